//! Each read model on its own: events go into a fresh database's log, the projector runs through
//! its runner, and the rows it keeps are read back. No HTTP, no other consumer.

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::DomainEvent;
use domain::job::{JobEvent, JobId};
use domain::model_name::GroupName;
use domain::organization::OrganizationId;
use domain::team::{BudgetMode, KeyFingerprint, RateLimits, TeamAlias, TeamEvent, TeamId};
use domain::usage::{
    HoldPart, USAGE_AGGREGATE, UsageEvent, UsageInput, UsageRecord, UsageSource, UsageStatus,
};
use domain::{Money, Percent};
use projections::budgets::holds::{self, Grant};
use projections::progress::ProgressSignal;
use projections::runner::Step;
use projections::{ConsumerRunner, Projector, RunnerConfig};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use store::LogPosition;
use store::append::{self, StreamStart};

fn d(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

fn money(text: &str) -> Money {
    Money::parse_amount("amount", text).expect("an amount")
}

/// Appends `event` at `sequence` of its stream, as the write side would.
async fn append<E: DomainEvent + Serialize>(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    sequence: i64,
    event: &E,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         values ($1, $2, $3, $4, $5, $6::json, '{}'::json)",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(sequence)
    .bind(event.event_type())
    .bind(event.event_version())
    .bind(serde_json::to_string(event)?)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records usage the way the ledger does: one stream per request.
async fn record(pool: &PgPool, records: Vec<UsageRecord>) -> anyhow::Result<()> {
    let starts = records
        .into_iter()
        .map(|r| {
            let id = r.request_id.as_str().to_owned();
            StreamStart::with_metadata_text(
                USAGE_AGGREGATE,
                id,
                &UsageEvent::UsageRecorded(r),
                "{}".into(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut conn = pool.acquire().await?;
    append::open_streams(&mut conn, &starts).await?;
    Ok(())
}

/// Runs `projector` until it has applied everything committed; returns how many events it saw.
async fn project(pool: &PgPool, projector: Arc<dyn Projector>) -> anyhow::Result<usize> {
    let runner = ConsumerRunner::new(
        pool.clone(),
        projector.clone(),
        RunnerConfig::default(),
        ProgressSignal::default(),
    );
    store::checkpoint::register(pool, projector.name()).await?;
    let mut applied = 0;
    loop {
        match runner.step().await? {
            Step::Applied(n) => applied += n,
            Step::Idle {
                behind_horizon: false,
            } => return Ok(applied),
            Step::Idle { .. } | Step::Busy => tokio::task::yield_now().await,
        }
    }
}

/// `saas-api replay` for one read model: rebuilt from position zero aside, then swapped in.
async fn replay(pool: &PgPool, projector: Arc<dyn Projector>) -> anyhow::Result<()> {
    let mut rebuild = projections::rebuild::Rebuild::start(pool, projector).await?;
    rebuild.run(None, &mut |_| {}).await?;
    rebuild.swap().await?;
    Ok(())
}

/// Moves a consumer back to the start of the log, so the next run applies every event again.
async fn rewind(pool: &PgPool, consumer: &str) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    store::checkpoint::set(&mut conn, consumer, LogPosition::START, 0).await?;
    Ok(())
}

fn created(team: &str, credits: &str, mode: BudgetMode) -> TeamEvent {
    TeamEvent::TeamCreated {
        team_id: TeamId::parse(team).unwrap(),
        organization_id: OrganizationId::parse("org-a").unwrap(),
        team_alias: TeamAlias::parse("Team A").unwrap(),
        model_groups: vec![GroupName::parse("chat").unwrap()],
        credits: money(credits),
        budget_mode: mode,
        rate_limits: RateLimits::default(),
        markup_percent: Percent::ZERO,
        key_fingerprint: KeyFingerprint::new("0123456789abcdef".into()),
    }
}

fn usage(team: &str, request: &str, cost: &str, markup: &str) -> UsageRecord {
    let now = Utc::now();
    UsageRecord::new(
        UsageInput {
            request_id: request.into(),
            model: "fake-gpt".into(),
            provider_model: None,
            prompt_tokens: 10,
            completion_tokens: 20,
            cached_tokens: 0,
            provider_cost: d(cost),
            status: UsageStatus::Success,
            latency_ms: Some(5),
            occurred_at: now,
            job_id: None,
            source: UsageSource::Api,
        },
        TeamId::parse(team).unwrap(),
        OrganizationId::parse("org-a").unwrap(),
        None,
        Percent::parse_markup("markup_percent", markup).unwrap(),
        now,
    )
    .expect("a valid record")
}

#[tokio::test]
async fn budgets_add_prices_to_spend_and_alert_once_per_threshold_and_credit_level()
-> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let budgets: Arc<dyn Projector> = Arc::new(projections::budgets::BudgetsProjector::default());
    append(
        pool,
        "Team",
        "team-a",
        1,
        &created("team-a", "10", BudgetMode::Hard),
    )
    .await?;
    // 8.50 at a 0 % markup crosses 80 % of 10; 1.50 more reaches 100 %.
    record(pool, vec![usage("team-a", "r1", "8.5", "0")]).await?;
    project(pool, budgets.clone()).await?;
    record(pool, vec![usage("team-a", "r2", "1.5", "0")]).await?;
    project(pool, budgets.clone()).await?;

    let row = projections::budgets::get(pool, "team-a")
        .await?
        .expect("a budget");
    assert_eq!(
        (row.credits, row.spend, row.request_count),
        (d("10"), d("10"), 2)
    );
    let alerts = projections::budgets::alerts(pool, Some("team-a")).await?;
    let thresholds: Vec<i32> = alerts.iter().map(|a| a.threshold_percent).collect();
    assert_eq!(thresholds, [80, 100]);

    // A replay from zero re-derives the same alerts and writes nothing twice. (Budgets add
    // prices up, so applying a batch twice would count it twice: exactly once rests on the
    // checkpoint moving in the batch's transaction, which the runner's tests hold.)
    replay(pool, budgets.clone()).await?;
    assert_eq!(
        projections::budgets::alerts(pool, Some("team-a"))
            .await?
            .len(),
        2
    );
    assert_eq!(
        projections::budgets::get(pool, "team-a")
            .await?
            .unwrap()
            .spend,
        d("10")
    );

    // New credits start a new level: both thresholds can fire again.
    let added = TeamEvent::CreditsAdded {
        team_id: TeamId::parse("team-a").unwrap(),
        amount: money("10"),
        credits_total: money("20"),
        reason: None,
    };
    append(pool, "Team", "team-a", 2, &added).await?;
    record(pool, vec![usage("team-a", "r3", "7", "0")]).await?;
    project(pool, budgets).await?;
    let alerts = projections::budgets::alerts(pool, Some("team-a")).await?;
    let levels: Vec<(i64, i32)> = alerts
        .iter()
        .map(|a| (a.credit_level, a.threshold_percent))
        .collect();
    assert_eq!(levels, [(0, 80), (0, 100), (1, 80)]);
    Ok(())
}

#[tokio::test]
async fn budgets_release_the_part_of_a_hold_each_recorded_request_took() -> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let budgets: Arc<dyn Projector> = Arc::new(projections::budgets::BudgetsProjector::default());
    append(
        pool,
        "Team",
        "team-a",
        1,
        &created("team-a", "100", BudgetMode::Hard),
    )
    .await?;
    project(pool, budgets.clone()).await?;

    // A lease of at least one worst case of 2: a quarter of what is left, so 25.
    let Grant::Granted(leased) = holds::grant(pool, "team-a", "lease-1", d("2"), 32).await? else {
        panic!("100 of credit left, a lease of worst case 2 is refused");
    };
    assert_eq!(leased, d("25"));
    assert_eq!(
        projections::budgets::get(pool, "team-a")
            .await?
            .unwrap()
            .held,
        d("25")
    );

    // Two requests admitted from that lease (worst case 2 each) cost 0.5 and 1.25.
    let taking_two = |mut record: UsageRecord| {
        record.hold = Some(HoldPart {
            key: "lease-1".into(),
            amount: Some(money("2")),
        });
        record
    };
    let first = taking_two(usage("team-a", "r1", "0.5", "0"));
    let second = taking_two(usage("team-a", "r2", "1.25", "0"));
    record(pool, vec![first, second]).await?;
    project(pool, budgets.clone()).await?;

    let row = projections::budgets::get(pool, "team-a").await?.unwrap();
    // Spend holds the real prices; held lost exactly the two worst cases it had for them.
    assert_eq!((row.spend, row.held), (d("1.75"), d("21")));
    let left: Decimal =
        sqlx::query_scalar("select amount from budget_holds where request_key = 'lease-1'")
            .fetch_one(pool)
            .await?;
    assert_eq!(left, d("21"));

    // Handing the lease back returns the rest; nothing stays held.
    holds::give_back(pool, "lease-1", left).await?;
    holds::expire(pool).await?;
    assert_eq!(
        projections::budgets::get(pool, "team-a")
            .await?
            .unwrap()
            .held,
        d("0")
    );

    // A replay of the same records does not release the hold a second time.
    replay(pool, budgets).await?;
    let row = projections::budgets::get(pool, "team-a").await?.unwrap();
    assert_eq!((row.spend, row.held), (d("1.75"), d("0")));
    Ok(())
}

#[tokio::test]
async fn teams_fold_their_events_and_ignore_a_second_application() -> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let teams: Arc<dyn Projector> = Arc::new(projections::teams::TeamsProjector);
    let id = TeamId::parse("team-a").unwrap();
    append(
        pool,
        "Team",
        "team-a",
        1,
        &created("team-a", "10", BudgetMode::Hard),
    )
    .await?;
    let events = [
        TeamEvent::CreditsAdded {
            team_id: id.clone(),
            amount: money("5"),
            credits_total: money("15"),
            reason: Some("top-up".into()),
        },
        TeamEvent::ModelGroupAssigned {
            team_id: id.clone(),
            group: GroupName::parse("code").unwrap(),
            model_groups: vec![
                GroupName::parse("chat").unwrap(),
                GroupName::parse("code").unwrap(),
            ],
        },
        TeamEvent::BudgetModeSet {
            team_id: id.clone(),
            budget_mode: BudgetMode::Soft,
        },
        TeamEvent::TeamSuspended {
            team_id: id.clone(),
            reason: None,
        },
    ];
    for (i, event) in events.iter().enumerate() {
        append(pool, "Team", "team-a", i as i64 + 2, event).await?;
    }
    assert_eq!(project(pool, teams.clone()).await?, 5);

    let check = |row: projections::teams::TeamRow| {
        assert_eq!(row.credits, d("15"));
        assert_eq!(row.model_groups, ["chat", "code"]);
        assert_eq!(row.budget_mode, "soft");
        assert_eq!(row.status, "suspended");
    };
    let row = projections::teams::get(pool, "team-a")
        .await?
        .expect("a team");
    let position = row.last_position;
    check(row);

    // Every event applied again (a checkpoint lost) changes nothing: rows carry their position.
    rewind(pool, teams.name()).await?;
    assert_eq!(project(pool, teams).await?, 5);
    let row = projections::teams::get(pool, "team-a")
        .await?
        .expect("a team");
    assert_eq!(row.last_position, position);
    check(row);
    Ok(())
}

#[tokio::test]
async fn usage_keeps_each_request_once_and_its_daily_sums_agree() -> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let projector: Arc<dyn Projector> = Arc::new(projections::usage::UsageProjector);
    // A 20 % markup: the price is the cost times 1.2.
    record(
        pool,
        vec![
            usage("team-a", "r1", "1", "20"),
            usage("team-a", "r2", "0.000000000123", "20"),
        ],
    )
    .await?;
    // The same request again (a push after a pull) is not a new stream.
    record(pool, vec![usage("team-a", "r1", "1", "20")]).await?;
    assert_eq!(project(pool, projector.clone()).await?, 2);

    let (rows, price): (i64, Decimal) =
        sqlx::query_as("select count(*), sum(price) from usage_records where team_id = 'team-a'")
            .fetch_one(pool)
            .await?;
    // 0.000000000123 x 1.2 is kept to 12 places: 0.000000000148.
    assert_eq!((rows, price), (2, d("1.200000000148")));
    let (requests, daily_price, tokens): (i64, Decimal, i64) = sqlx::query_as(
        "select sum(requests)::bigint, sum(price), sum(prompt_tokens + completion_tokens)::bigint
           from usage_daily where team_id = 'team-a'",
    )
    .fetch_one(pool)
    .await?;
    assert_eq!((requests, daily_price, tokens), (2, price, 60));

    rewind(pool, projector.name()).await?;
    project(pool, projector).await?;
    let again: (i64, Decimal) =
        sqlx::query_as("select sum(requests)::bigint, sum(price) from usage_daily")
            .fetch_one(pool)
            .await?;
    assert_eq!(again, (2, price));
    Ok(())
}

/// The same request recorded under two streams (one from before usage streams were scoped by
/// team, one after: an upgrade racing a re-read) counts once, live and after a replay, and the
/// daily sums agree with the rows.
#[tokio::test]
async fn usage_recorded_under_two_streams_counts_once_after_a_replay_too() -> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let projector: Arc<dyn Projector> = Arc::new(projections::usage::UsageProjector);
    record(pool, vec![usage("team-a", "r1", "1", "0")]).await?;
    let scoped = StreamStart::with_metadata_text(
        USAGE_AGGREGATE,
        domain::usage::stream_id("team-a", "r1"),
        &UsageEvent::UsageRecorded(usage("team-a", "r1", "5", "0")),
        "{}".into(),
    )?;
    append::open_streams(&mut *pool.acquire().await?, &[scoped]).await?;
    record(pool, vec![usage("team-a", "r2", "2", "0")]).await?;

    let sums = |pool: PgPool| async move {
        let rows: (i64, Decimal) = sqlx::query_as("select count(*), sum(price) from usage_records")
            .fetch_one(&pool)
            .await?;
        let daily: (i64, Decimal) =
            sqlx::query_as("select sum(requests)::bigint, sum(price) from usage_daily")
                .fetch_one(&pool)
                .await?;
        anyhow::Ok((rows, daily))
    };
    project(pool, projector.clone()).await?;
    // The first in log order is kept: 1 + 2.
    let live = sums(pool.clone()).await?;
    assert_eq!(live, ((2, d("3")), (2, d("3"))));
    replay(pool, projector).await?;
    assert_eq!(sums(pool.clone()).await?, live);
    let keys: i64 = sqlx::query_scalar(
        "select count(*) from pg_constraint where conname = 'usage_records_pkey'
            and conrelid = 'public.usage_records'::regclass",
    )
    .fetch_one(pool)
    .await?;
    assert_eq!(keys, 1, "the replayed table keeps its primary key");
    Ok(())
}

/// A rebuild reads the log in batches; a team's budget folded over several of them (the 80 %
/// threshold crossed in the second) comes out as the live one did.
#[tokio::test]
async fn budgets_rebuilt_over_several_batches_match_the_live_ones() -> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let budgets: Arc<dyn Projector> = Arc::new(projections::budgets::BudgetsProjector::default());
    let requests = projections::rebuild::BATCH as usize + 1;
    let credits = (requests as i64 * 5 / 4).to_string();
    append(
        pool,
        "Team",
        "team-a",
        1,
        &created("team-a", &credits, BudgetMode::Soft),
    )
    .await?;
    let records: Vec<UsageRecord> = (0..requests)
        .map(|i| usage("team-a", &format!("r{i}"), "1", "0"))
        .collect();
    record(pool, records).await?;
    project(pool, budgets.clone()).await?;
    let live = projections::budgets::get(pool, "team-a")
        .await?
        .expect("a budget");
    assert_eq!(
        (live.spend, live.request_count),
        (Decimal::from(requests), requests as i64)
    );
    let alerts = projections::budgets::alerts(pool, None).await?;

    replay(pool, budgets).await?;
    let rebuilt = projections::budgets::get(pool, "team-a")
        .await?
        .expect("a budget");
    assert_eq!(rebuilt, live);
    assert_eq!(projections::budgets::alerts(pool, None).await?, alerts);
    assert_eq!(
        alerts
            .iter()
            .map(|a| a.threshold_percent)
            .collect::<Vec<_>>(),
        [80]
    );
    Ok(())
}

#[tokio::test]
async fn jobs_sum_their_calls_and_end_once() -> anyhow::Result<()> {
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let jobs: Arc<dyn Projector> = Arc::new(projections::jobs::JobsProjector);
    let job = JobId::parse("job-1").unwrap();
    let team = TeamId::parse("team-a").unwrap();
    append(
        pool,
        "Job",
        "job-1",
        1,
        &JobEvent::JobCreated {
            job_id: job.clone(),
            team_id: team.clone(),
            job_type: "summarise".into(),
            metadata: serde_json::json!({"doc": 7}),
        },
    )
    .await?;
    let mut calls = vec![
        usage("team-a", "c1", "0.25", "0"),
        usage("team-a", "c2", "0.5", "0"),
    ];
    calls[1].status = UsageStatus::Failure;
    let mut unrelated = usage("team-a", "c3", "9", "0");
    unrelated.job_id = None;
    for call in &mut calls {
        call.job_id = Some("job-1".into());
    }
    calls.push(unrelated);
    record(pool, calls).await?;
    append(
        pool,
        "Job",
        "job-1",
        2,
        &JobEvent::JobCompleted {
            job_id: job,
            team_id: team,
            result: Some(serde_json::json!({"ok": true})),
        },
    )
    .await?;
    project(pool, jobs.clone()).await?;

    let row = projections::jobs::get(pool, "job-1").await?.expect("a job");
    assert_eq!(row.status, "completed");
    assert_eq!((row.calls, row.failed_calls), (2, 1));
    assert_eq!(
        (row.price, row.prompt_tokens, row.completion_tokens),
        (d("0.75"), 20, 40)
    );

    // Job sums add up like budgets: a replay (not a second application) is what must agree.
    replay(pool, jobs).await?;
    let again = projections::jobs::get(pool, "job-1").await?.expect("a job");
    assert_eq!((again.calls, again.price), (2, d("0.75")));
    Ok(())
}

/// A rebuild bulk-loads usage rows by another path than the live projection; every field comes
/// out the same, text that needs escaping and absent values included.
#[tokio::test]
async fn a_rebuild_reads_back_every_field_of_usage_as_the_live_model_holds_it() -> anyhow::Result<()>
{
    let db = testkit::fresh_database().await?;
    let pool = &db.pool;
    let projector: Arc<dyn Projector> = Arc::new(projections::usage::UsageProjector);
    let mut odd = usage("team-a", "r1", "0.000123456789", "12.5");
    odd.model = "gpt\\N\tmini\nnew\r\\.".into();
    odd.provider_model = Some("openai/\\gpt".into());
    odd.job_id = Some("job\t1".into());
    odd.latency_ms = None;
    // Below the microsecond PostgreSQL keeps: dropped the same way by either path.
    odd.occurred_at = "2026-12-06T10:11:12.123456999Z".parse()?;
    let mut plain = usage("team-b", "r2", "3", "0");
    plain.provider_model = None;
    plain.occurred_at = "2026-12-06T10:11:12.123456Z".parse()?;
    // Enough more that the bulk load sends its rows in several chunks.
    let bulk = (0..600).map(|i| usage("team-c", &format!("bulk-{i}"), "0.01", "0.0125"));
    record(pool, [odd, plain].into_iter().chain(bulk).collect()).await?;
    project(pool, projector.clone()).await?;

    let diffs = projections::rebuild::Rebuild::start(pool, projector)
        .await?
        .verify(&mut |_| {})
        .await?;
    assert_eq!(diffs, vec![], "the rebuilt tables equal the live ones");
    let model: String =
        sqlx::query_scalar("select model from usage_records where team_id = 'team-a'")
            .fetch_one(pool)
            .await?;
    assert_eq!(model, "gpt\\N\tmini\nnew\r\\.");
    Ok(())
}
