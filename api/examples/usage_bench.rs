//! Usage benchmark: spend ingestion throughput, report latency over a large ledger, and the
//! lag from recording usage to the report showing it. Prints a markdown table row set;
//! `scripts/bench-usage` runs it in release mode and appends the output to bench/RESULTS.md.
//!
//!   cargo run --release -p api --example usage_bench -- [TEAMS] [RECORDS] [INGEST_ROWS] [REPORT_RECORDS]
//!
//! Reports over REPORT_RECORDS: 64 closed-loop clients measure the saturation rate, then open
//! loop at a quarter and half of it measures latency from each request's due time.

use std::time::{Duration, Instant};

use anyhow::Context;
use api::config::{Config, LogFormat, SpendIngestConfig};
use api::startup::Application;
use app::usage::{Incoming, IngestSettings, Ledger, SpendLogIngestor};
use chrono::{TimeZone, Utc};
use domain::CommandMetadata;
use domain::usage::{UsageInput, UsageSource, UsageStatus};
use litellm::double::{LitellmDouble, SpendEntry};
use litellm::{ClientConfig, LitellmClient};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const MASTER_KEY: &str = "mk-bench-7c1e9a0b3d5f2e4a6c8b";
const MODELS: [&str; 3] = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"];

#[path = "shared/pacing.rs"]
mod pacing;

#[derive(Clone)]
struct Bench {
    base: String,
    http: reqwest::Client,
    pool: PgPool,
    /// Consumers paused by BENCH_ABLATE, not waited for.
    paused: Vec<String>,
}

impl Bench {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-admin-key", MASTER_KEY)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("x-admin-key", MASTER_KEY)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// Waits until the usage and budget projectors hold every committed event (a cheap check:
    /// both checkpoints at or past the newest event in log order).
    async fn caught_up(&self) -> anyhow::Result<()> {
        loop {
            let done: bool = sqlx::query_scalar(
                "select coalesce(bool_and((c.last_tx_id, c.last_position) >= (e.tx_id, e.global_position)), true)
                   from consumer_checkpoints c,
                        (select tx_id, global_position from events
                          order by tx_id desc, global_position desc limit 1) e
                  where c.consumer_name in ('usage', 'budgets') and c.consumer_name <> all($1)",
            )
            .bind(&self.paused)
            .fetch_one(&self.pool)
            .await?;
            if done {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Grows the usage read model to `copies` times its rows by SQL (appending ten million records
/// through the ledger would take a quarter of an hour here): each record copied under new
/// request ids, the roll-ups multiplied to match. Secondary indexes are rebuilt after.
async fn grow_ledger(pool: &PgPool, copies: u64) -> anyhow::Result<()> {
    let extra = i64::try_from(copies - 1)?;
    let mut conn = pool.acquire().await?;
    sqlx::query("set maintenance_work_mem = '512MB'")
        .execute(&mut *conn)
        .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select indexname::text, indexdef from pg_indexes
          where schemaname = 'public' and tablename = 'usage_records'
            and indexname <> 'usage_records_pkey'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("drop index {name}"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "insert into usage_records
         select request_id || '~' || g, team_id, organization_id, key_fingerprint, model,
                provider_model, prompt_tokens, completion_tokens, cached_tokens, provider_cost,
                price, status, latency_ms, occurred_at, job_id, source, position
           from usage_records, generate_series(1, $1::bigint) g",
    )
    .bind(extra)
    .execute(&mut *conn)
    .await?;
    let k = extra + 1;
    sqlx::query(
        "update usage_daily set requests = requests * $1, failed_requests = failed_requests * $1,
                prompt_tokens = prompt_tokens * $1, completion_tokens = completion_tokens * $1,
                cached_tokens = cached_tokens * $1, provider_cost = provider_cost * $1,
                price = price * $1",
    )
    .bind(k)
    .execute(&mut *conn)
    .await?;
    for (_, definition) in &indexes {
        sqlx::query(definition).execute(&mut *conn).await?;
    }
    sqlx::query("vacuum analyze usage_records")
        .execute(&mut *conn)
        .await?;
    sqlx::query("vacuum analyze usage_daily")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// 64 clients, each asking for random teams' reports back to back: throughput and latency
/// (closed loop: each client sends its next request when the last one is answered).
/// 64 closed-loop clients asking for random teams' reports: the rate the service saturates at.
/// Returns the table row and that rate.
async fn concurrent_reports(
    bench: &Bench,
    teams: &[String],
    query: &str,
    records: u64,
) -> anyhow::Result<(String, f64)> {
    const CLIENTS: u64 = 64;
    const EACH: u64 = 300;
    let started = Instant::now();
    let clients = (0..CLIENTS).map(|c| async move {
        let mut state = 0x9e3779b97f4a7c15u64 ^ (c + 1).wrapping_mul(0x2545f4914f6cdd1d);
        let mut samples = Vec::with_capacity(EACH as usize);
        for _ in 0..EACH {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let team = &teams[(state % teams.len() as u64) as usize];
            let sent = Instant::now();
            let body = bench
                .get(&format!("/api/teams/{team}/usage{query}"))
                .await?;
            samples.push(sent.elapsed());
            anyhow::ensure!(body["request_count"].as_i64().is_some());
        }
        anyhow::Ok(samples)
    });
    let mut samples: Vec<Duration> = futures::future::try_join_all(clients)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let secs = started.elapsed().as_secs_f64();
    samples.sort();
    let rate = samples.len() as f64 / secs;
    Ok((
        format!(
            "| `GET /api/teams/{{id}}/usage` 10-day period with partial edge days, {records} records / {} teams, {CLIENTS} closed-loop clients (each sends when answered: the saturation rate; {} requests, {rate:.0}/s) | p50 {:.2} ms, p99 {:.2} ms | max {:.2} ms |",
            teams.len(),
            samples.len(),
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            percentile(&samples, 1.0)
        ),
        rate,
    ))
}

/// The same reports sent open loop at `rate` a second for `seconds`: report `i` is due at
/// `start + i / rate` (`pacing::paced`) and its latency runs from then; a failed or wrong
/// answer counts as slower than any served one.
async fn paced_reports(
    bench: &Bench,
    teams: &[String],
    query: &str,
    records: u64,
    rate: f64,
    seconds: u64,
) -> String {
    let total = (rate * seconds as f64) as u64;
    let runtime = tokio::runtime::Handle::current();
    let (bench, teams, query) = (bench.clone(), teams.to_vec(), query.to_owned());
    let team_count = teams.len();
    let mut state = 0x2545f4914f6cdd1du64;
    let tasks = pacing::paced(rate, total, move |_, due| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let path = format!(
            "/api/teams/{}/usage{query}",
            teams[(state % teams.len() as u64) as usize]
        );
        let bench = bench.clone();
        runtime.spawn(async move {
            let served = matches!(bench.get(&path).await, Ok(body) if body["request_count"].as_i64().is_some());
            served.then(|| due.elapsed())
        })
    })
    .await;
    let mut samples = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for task in tasks {
        match task.await {
            Ok(Some(latency)) => samples.push(latency),
            _ => failed += 1,
        }
    }
    samples.sort();
    // Failures sort after every served request.
    samples.extend(std::iter::repeat_n(Duration::MAX, failed));
    let shown = |p: f64| {
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        match samples[index] {
            Duration::MAX => "failed".to_owned(),
            latency => format!("{:.2} ms", latency.as_secs_f64() * 1000.0),
        }
    };
    format!(
        "| `GET /api/teams/{{id}}/usage` as above, {records} records / {team_count} teams, open loop at {rate:.0}/s for {seconds} s (latency from each request's due time; {total} requests, {failed} failed) | p50 {}, p99 {} | max {} |",
        shown(0.5),
        shown(0.99),
        shown(1.0)
    )
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn incoming(team_id: &str, n: u64, at: chrono::DateTime<Utc>) -> Incoming {
    Incoming {
        input: UsageInput {
            request_id: format!("bench-{n}"),
            model: MODELS[(n % 3) as usize].to_owned(),
            provider_model: None,
            prompt_tokens: 100 + n % 900,
            completion_tokens: 20 + n % 300,
            cached_tokens: 0,
            provider_cost: Decimal::new(((n % 997) + 1) as i64, 6),
            status: UsageStatus::Success,
            latency_ms: Some(200 + n % 800),
            occurred_at: at,
            job_id: None,
            source: UsageSource::Api,
        },
        key_hash: None,
        call_id: None,
        team_id: Some(team_id.to_owned()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("arguments are numbers"))
        .collect::<anyhow::Result<_>>()?;
    let teams = args.first().copied().unwrap_or(1000);
    let records = args.get(1).copied().unwrap_or(1_000_000);
    let ingest_rows = args.get(2).copied().unwrap_or(200_000).min(records);
    // The ledger grown (a whole multiple of RECORDS) for the concurrent report phase; 0 skips it.
    let report_records = args.get(3).copied().unwrap_or(0);
    anyhow::ensure!(
        report_records == 0 || (report_records >= records && report_records % records == 0),
        "REPORT_RECORDS is 0 or a whole multiple of RECORDS"
    );

    // KEEP_BENCH_DB=<name> keeps the filled database under that name (scripts/bench-replay).
    let name = std::env::var("KEEP_BENCH_DB")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("bench_usage_{}", uuid::Uuid::new_v4().simple()));
    let url = testkit::database_url(&name)?;
    let config = Config {
        database_url: url.clone().into(),
        master_key: MASTER_KEY.to_owned().into(),
        encryption_key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            .to_owned()
            .into(),
        host: [127, 0, 0, 1].into(),
        port: 0,
        litellm_proxy_url: "http://127.0.0.1:9".into(),
        litellm_master_key: None,
        log_format: LogFormat::Pretty,
        db_pool_size: 20,
        read_wait_timeout: Duration::from_secs(30),
        litellm_resync_every: Duration::from_secs(3600),
        spend_ingest: SpendIngestConfig::default(),
        admin_failures_per_minute: api::panel::login_limit::MAX_FAILURES,
        background_threads: 0,
        background_nice: 0,
        prices_max_age: Duration::from_secs(300),
        estimate_grace: Duration::ZERO,
        edge: api::config::EdgeConfig::default(),
        dev_mode: false,
    };
    let call_ids = config.call_ids()?;
    let app = Application::build(config).await?;
    let mut bench = Bench {
        base: format!("http://127.0.0.1:{}", app.port()),
        http: reqwest::Client::new(),
        pool: app.pool().clone(),
        paused: Vec::new(),
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Teams.
    bench
        .post(
            "/api/organizations/create",
            json!({"organization_id": "org_bench", "name": "Bench"}),
        )
        .await?;
    bench
        .post(
            "/api/model-groups/create",
            json!({"group_name": "all", "models": MODELS}),
        )
        .await?;
    let team_ids: Vec<String> = (0..teams).map(|i| format!("team_{i:05}")).collect();
    for chunk in team_ids.chunks(16) {
        let creations = chunk.iter().map(|id| {
            bench.post(
                "/api/teams/create",
                json!({"organization_id": "org_bench", "team_id": id, "team_alias": id,
                       "model_groups": ["all"], "credits": 1_000_000, "markup_percent": 20}),
            )
        });
        for created in futures::future::join_all(creations).await {
            created?;
        }
    }
    let hashes: Vec<String> =
        sqlx::query_scalar("select encode(key_hash, 'hex') from virtual_keys order by team_id")
            .fetch_all(&bench.pool)
            .await?;
    bench.caught_up().await?;
    let mut lines = Vec::new();

    // BENCH_ABLATE=hash_chain,budgets,event_seals takes parts away for the ingestion and
    // append phases, to measure what each costs (never in a run quoted as the service's
    // figure): the per-event hash-chain trigger is disabled (hashes left zero), a consumer is
    // paused by holding its checkpoint row (the runner skips a locked checkpoint; the holding
    // transaction is named as one that appends no events, so readers do not wait for it).
    let ablate: Vec<String> = std::env::var("BENCH_ABLATE")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut paused = Vec::new();
    for part in &ablate {
        match part.as_str() {
            "hash_chain" => {
                sqlx::raw_sql(
                    "alter table events disable trigger events_hash_chain;
                     alter table events alter column hash set default '\\x00'",
                )
                .execute(&bench.pool)
                .await?;
            }
            "budgets" | "event_seals" => paused.push(part.clone()),
            other => anyhow::bail!("BENCH_ABLATE: no part named {other:?}"),
        }
    }
    let mut hold = bench.pool.begin().await?;
    sqlx::query("set local application_name = 'saas-no-events'")
        .execute(&mut *hold)
        .await?;
    sqlx::query("select 1 from consumer_checkpoints where consumer_name = any($1) for update")
        .bind(&paused)
        .execute(&mut *hold)
        .await?;
    bench.paused = paused;

    // 1. Spend-log ingestion, end to end: rows served by the LiteLLM double, paged, attributed
    //    by key hash, appended to the event store.
    let double = LitellmDouble::start("sk-bench-litellm", &MODELS).await?;
    let now = Utc::now();
    double.record_spend((0..ingest_rows).map(|n| {
        let at = now - chrono::Duration::milliseconds((ingest_rows - n) as i64 * 10);
        let mut entry = SpendEntry::success(
            &format!("chatcmpl-{n}"),
            &hashes[(n % hashes.len() as u64) as usize],
            MODELS[(n % 3) as usize],
            &format!("0.{:06}", (n % 997) + 1),
            &at.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string(),
        );
        entry.prompt_tokens = 100 + n % 900;
        entry
    }));
    let client = LitellmClient::new(ClientConfig::new(
        double.base_url(),
        "sk-bench-litellm".to_owned().into(),
    ))?;
    let ingestor = SpendLogIngestor::new(
        bench.pool.clone(),
        client,
        call_ids,
        IngestSettings {
            lookback: Duration::from_secs(3 * 24 * 3600),
            ..IngestSettings::default()
        },
    );
    let started = Instant::now();
    let stats = ingestor
        .pass()
        .await?
        .context("the ingestion lease is free")?;
    let ingest_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        stats.recorded == ingest_rows,
        "recorded {} of {ingest_rows}",
        stats.recorded
    );
    bench.caught_up().await?;
    let projected_secs = started.elapsed().as_secs_f64();
    lines.push(format!(
        "| spend-log ingestion (pull from the double, {ingest_rows} rows, pages of 1000) | {:.0} records/s | {ingest_secs:.2} s |",
        ingest_rows as f64 / ingest_secs
    ));
    lines.push(format!(
        "| ... until the usage and budget read models hold them | {:.0} records/s | {projected_secs:.2} s |",
        ingest_rows as f64 / projected_secs
    ));
    // A restart that lost its cursor: the whole window again.
    sqlx::query("update spend_ingest_cursors set watermark = now() - interval '3 days'")
        .execute(&bench.pool)
        .await?;
    let again = Instant::now();
    let stats = ingestor.pass().await?.context("lease")?;
    anyhow::ensure!(
        stats.recorded == 0 && stats.duplicates == ingest_rows,
        "re-read must be a no-op: {stats:?}"
    );
    lines.push(format!(
        "| re-reading the same window (all duplicates, nothing written) | {:.0} rows/s | {:.2} s |",
        ingest_rows as f64 / again.elapsed().as_secs_f64(),
        again.elapsed().as_secs_f64()
    ));
    drop(double);

    // 2. Fill the ledger to RECORDS through the ledger directly (30 days, every team).
    let ledger = Ledger::new(bench.pool.clone());
    let metadata = CommandMetadata::new("system:bench", Utc::now());
    let day0 = Utc.from_utc_datetime(
        &(now - chrono::Duration::days(30))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    );
    let fill = records - ingest_rows;
    let started = Instant::now();
    let mut n = 0;
    while n < fill {
        let batch: Vec<Incoming> = (n..(n + 1000).min(fill))
            .map(|i| {
                let at = day0 + chrono::Duration::seconds((i * 2_592_000 / fill.max(1)) as i64);
                incoming(&team_ids[(i % teams) as usize], ingest_rows + i, at)
            })
            .collect();
        n += batch.len() as u64;
        let prepared = ledger.prepare(batch, Utc::now()).await?;
        ledger.append(&prepared.records, &metadata).await?;
    }
    let fill_secs = started.elapsed().as_secs_f64();
    bench.caught_up().await?;
    let fill_projected = started.elapsed().as_secs_f64();
    lines.push(format!(
        "| ledger append (batches of 1000, {fill} records) | {:.0} records/s | {fill_secs:.2} s |",
        fill as f64 / fill_secs
    ));
    lines.push(format!(
        "| ... until the usage and budget read models hold them | {:.0} records/s | {fill_projected:.2} s |",
        fill as f64 / fill_projected
    ));
    let total: i64 = sqlx::query_scalar("select count(*) from usage_records")
        .fetch_one(&bench.pool)
        .await?;
    anyhow::ensure!(total as u64 == records, "usage_records holds {total}");

    hold.rollback().await?;
    bench.paused.clear();
    bench.caught_up().await?;
    // 3. Report latency over the full ledger, in a steady state: statistics fresh, no
    //    autovacuum of the bulk load competing.
    sqlx::query("vacuum analyze").execute(&bench.pool).await?;
    let mut rng_state = 0x9e3779b97f4a7c15u64;
    let mut next_team = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        team_ids[(rng_state % teams) as usize].clone()
    };
    let from = (now - chrono::Duration::days(10) + chrono::Duration::hours(7))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (label, query) in [
        ("all time", String::new()),
        (
            "10-day period with partial edge days",
            format!("?from={from}"),
        ),
    ] {
        for _ in 0..50 {
            bench
                .get(&format!("/api/teams/{}/usage{query}", next_team()))
                .await?;
        }
        let mut samples = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let path = format!("/api/teams/{}/usage{query}", next_team());
            let started = Instant::now();
            let body = bench.get(&path).await?;
            samples.push(started.elapsed());
            anyhow::ensure!(body["request_count"].as_i64().is_some());
        }
        samples.sort();
        lines.push(format!(
            "| `GET /api/teams/{{id}}/usage` {label}, {records} records / {teams} teams, 2000 sequential requests | p50 {:.2} ms, p99 {:.2} ms | max {:.2} ms |",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            percentile(&samples, 1.0)
        ));
    }

    // 4. Lag: from the record command's answer to the report counting it (polled), idle system.
    let mut lags = Vec::new();
    for i in 0..100 {
        let team = next_team();
        let before = bench.get(&format!("/api/teams/{team}/usage")).await?["request_count"]
            .as_i64()
            .unwrap_or(0);
        bench
            .post(
                "/api/usage/records",
                json!({"records": [{"request_id": format!("lag-{i}"), "team_id": team, "model": "gpt-4o",
                                    "provider_cost": "0.01", "prompt_tokens": 10, "completion_tokens": 5}]}),
            )
            .await?;
        let started = Instant::now();
        loop {
            let count = bench.get(&format!("/api/teams/{team}/usage")).await?["request_count"]
                .as_i64()
                .unwrap_or(0);
            if count > before {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "never projected"
            );
        }
        lags.push(started.elapsed());
    }
    lags.sort();
    lines.push(format!(
        "| projection lag: usage recorded → team report shows it (100 samples, polling) | p50 {:.1} ms, p99 {:.1} ms | max {:.1} ms |",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        percentile(&lags, 1.0)
    ));

    // 5. Reports from 64 clients at once over a ledger grown to REPORT_RECORDS.
    if report_records > records {
        let copies = report_records / records;
        grow_ledger(&bench.pool, copies).await?;
        // The growth is checked where the report reads it: one team's all-time count.
        let team = next_team();
        let rows: i64 = sqlx::query_scalar("select count(*) from usage_records where team_id = $1")
            .bind(&team)
            .fetch_one(&bench.pool)
            .await?;
        let reported = bench.get(&format!("/api/teams/{team}/usage")).await?["request_count"]
            .as_i64()
            .unwrap_or(-1);
        anyhow::ensure!(reported == rows, "report {reported} vs rows {rows}");
        let query = format!("?from={from}");
        let (line, saturation) =
            concurrent_reports(&bench, &team_ids, &query, report_records).await?;
        lines.push(line);
        // Open loop at a quarter and at half of that rate: what a report costs when the
        // service is not saturated.
        for share in [0.25, 0.5] {
            let rate = (saturation * share).round().max(1.0);
            lines.push(paced_reports(&bench, &team_ids, &query, report_records, rate, 10).await);
        }
    }

    shutdown.cancel();
    let _ = server.await;
    if std::env::var_os("KEEP_BENCH_DB").is_none() {
        bench.pool.close().await;
        let admin = PgPool::connect(&testkit::database_url("postgres")?).await?;
        sqlx::query(&format!(r#"drop database if exists "{name}" with (force)"#))
            .execute(&admin)
            .await?;
    }
    println!("| what | rate / latency | time |");
    println!("|---|---|---|");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
