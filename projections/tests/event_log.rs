//! The event-log reader against a real PostgreSQL: global order, no skipped events under
//! concurrent writers, exactly-once application, and one active instance per consumer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use projections::progress::{self, ProgressSignal, Projected};
use projections::runner::Step;
use projections::{ConsumerRunner, ProjectionError, Projector, RunnerConfig};
use sqlx::{Connection, PgConnection, PgPool, Row};
use store::{EventNotifier, LogPosition, StoredEvent, checkpoint};
use tokio_util::sync::CancellationToken;

/// Records every event it is handed, so tests can count applications.
struct Recorder {
    name: &'static str,
}

#[async_trait]
impl Projector for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.event_type == "Poison" {
            return Err(ProjectionError::Database(sqlx::Error::Protocol(
                "poison event".into(),
            )));
        }
        record(tx, self.name, event).await
    }
}

/// Notes that `consumer` applied `event`.
async fn record(
    tx: &mut PgConnection,
    consumer: &str,
    event: &StoredEvent,
) -> Result<(), ProjectionError> {
    sqlx::query("insert into applied (consumer, global_position, tx_id) values ($1, $2, $3)")
        .bind(consumer)
        .bind(event.global_position)
        .bind(event.tx_id as i64)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Records like `Recorder` but takes a poison event in its stride.
struct Sturdy {
    name: &'static str,
}

#[async_trait]
impl Projector for Sturdy {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        record(tx, self.name, event).await
    }
}

fn group(pool: &PgPool, projectors: Vec<Arc<dyn Projector>>) -> ConsumerRunner {
    ConsumerRunner::group(
        pool.clone(),
        projectors,
        RunnerConfig::default(),
        ProgressSignal::default(),
    )
}

async fn setup() -> anyhow::Result<PgPool> {
    let db = testkit::fresh_database().await?;
    sqlx::query(
        "create table applied (id bigserial primary key, consumer text not null,
                               global_position bigint not null, tx_id bigint not null,
                               applied_in text not null default pg_current_xact_id()::text)",
    )
    .execute(&db.pool)
    .await?;
    Ok(db.pool)
}

async fn insert_event(
    conn: &mut PgConnection,
    stream: &str,
    seq: i64,
    event_type: &str,
) -> anyhow::Result<i64> {
    let position = sqlx::query_scalar(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('Test', $1, $2, $3, '1.0', '{}', '{}') returning global_position",
    )
    .bind(stream)
    .bind(seq)
    .bind(event_type)
    .fetch_one(&mut *conn)
    .await?;
    Ok(position)
}

fn runner(pool: &PgPool, name: &'static str) -> ConsumerRunner {
    ConsumerRunner::new(
        pool.clone(),
        Arc::new(Recorder { name }),
        RunnerConfig::default(),
        ProgressSignal::default(),
    )
}

async fn applied(pool: &PgPool, consumer: &str) -> anyhow::Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("select global_position from applied where consumer = $1 order by id")
            .bind(consumer)
            .fetch_all(pool)
            .await?,
    )
}

/// Steps until nothing is left. xmin is cluster-wide, so a transaction in another test's
/// database can briefly hide committed events; a bounded retry waits it out.
async fn drain(runner: &ConsumerRunner) -> anyhow::Result<usize> {
    let mut total = 0;
    for _ in 0..2000 {
        match runner.step().await? {
            Step::Applied(n) => total += n,
            Step::Idle {
                behind_horizon: false,
            } => return Ok(total),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    anyhow::bail!("consumer did not catch up")
}

async fn connect(pool: &PgPool) -> anyhow::Result<PgConnection> {
    Ok(pool.acquire().await?.detach())
}

#[tokio::test]
async fn a_lower_position_still_open_holds_back_later_commits() -> anyhow::Result<()> {
    let pool = setup().await?;
    checkpoint::register(&pool, "c").await?;
    let runner = runner(&pool, "c");

    let mut a = connect(&pool).await?;
    let mut b = connect(&pool).await?;
    let mut tx_a = a.begin().await?;
    let low = insert_event(&mut tx_a, "a", 1, "Tested").await?;
    let mut tx_b = b.begin().await?;
    let high = insert_event(&mut tx_b, "b", 1, "Tested").await?;
    tx_b.commit().await?;
    assert!(low < high);

    // The later position is committed, but reading it now would skip `low` forever.
    assert_eq!(
        runner.step().await?,
        Step::Idle {
            behind_horizon: true
        }
    );
    assert!(applied(&pool, "c").await?.is_empty());

    tx_a.commit().await?;
    assert_eq!(drain(&runner).await?, 2);
    assert_eq!(applied(&pool, "c").await?, vec![low, high]);
    Ok(())
}

/// Opens a transaction on a connection named `application` that has written (so it holds a
/// transaction id, as a projector batch does once it writes its read model).
async fn open_writing_transaction(
    pool: &PgPool,
    application: &str,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("select set_config('application_name', $1, true)")
        .bind(application)
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into applied (consumer, global_position, tx_id) values ('other', 0, 0)")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

#[tokio::test]
async fn readers_wait_for_writers_of_events_but_not_for_projector_transactions()
-> anyhow::Result<()> {
    let pool = setup().await?;
    checkpoint::register(&pool, "c").await?;
    let runner = runner(&pool, "c");
    let mut writer = connect(&pool).await?;

    // A projector's batch (which never appends events) is open while an event commits.
    let projector =
        open_writing_transaction(&pool, store::event_log::NO_EVENTS_APPLICATION).await?;
    let first = insert_event(&mut writer, "a", 1, "Tested").await?;
    assert_eq!(
        drain(&runner).await?,
        1,
        "the projector's transaction held the reader back"
    );

    // So is a transaction in another database on the same server (LiteLLM's, say).
    let other = testkit::fresh_database().await?;
    sqlx::query("create table t (x int)")
        .execute(&other.pool)
        .await?;
    let mut elsewhere = other.pool.begin().await?;
    sqlx::query("insert into t values (1)")
        .execute(&mut *elsewhere)
        .await?;
    let second = insert_event(&mut writer, "a", 2, "Tested").await?;
    assert_eq!(
        drain(&runner).await?,
        1,
        "another database's transaction held the reader back"
    );

    // A projector that appends events (threshold alerts) is waited for, like any other writer.
    let appending =
        open_writing_transaction(&pool, store::event_log::APPENDING_PROJECTOR_APPLICATION).await?;
    let third = insert_event(&mut writer, "a", 3, "Tested").await?;
    assert_eq!(
        runner.step().await?,
        Step::Idle {
            behind_horizon: true
        }
    );
    appending.commit().await?;
    assert_eq!(drain(&runner).await?, 1);

    projector.commit().await?;
    elsewhere.commit().await?;
    assert_eq!(applied(&pool, "c").await?, vec![first, second, third]);
    Ok(())
}

#[tokio::test]
async fn events_are_delivered_in_transaction_order_not_position_order() -> anyhow::Result<()> {
    let pool = setup().await?;
    checkpoint::register(&pool, "c").await?;
    let runner = runner(&pool, "c");

    let mut a = connect(&pool).await?;
    let mut b = connect(&pool).await?;
    // A takes its transaction id first but writes its event after B has written and committed.
    let mut tx_a = a.begin().await?;
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *tx_a)
        .await?;
    let mut tx_b = b.begin().await?;
    let b_pos = insert_event(&mut tx_b, "b", 1, "Tested").await?;
    tx_b.commit().await?;
    assert!(matches!(runner.step().await?, Step::Idle { .. }));

    let a_pos = insert_event(&mut tx_a, "a", 1, "Tested").await?;
    tx_a.commit().await?;
    assert!(a_pos > b_pos);

    assert_eq!(drain(&runner).await?, 2);
    assert_eq!(applied(&pool, "c").await?, vec![a_pos, b_pos]);
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_and_a_live_reader_apply_every_event_exactly_once() -> anyhow::Result<()>
{
    let pool = setup().await?;
    checkpoint::register(&pool, "c").await?;
    let runner = Arc::new(runner(&pool, "c"));
    let done = CancellationToken::new();

    let reader = {
        let (runner, done) = (runner.clone(), done.clone());
        tokio::spawn(async move {
            while !done.is_cancelled() {
                runner.step().await.expect("step");
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..8 {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = connect(&pool).await?;
            for i in 0..25i64 {
                let mut tx = conn.begin().await?;
                insert_event(&mut tx, &format!("w{w}"), 2 * i + 1, "Tested").await?;
                // Hold the transaction open for a moment so commits interleave out of order.
                tokio::time::sleep(Duration::from_millis(rand_ms(w, i))).await;
                insert_event(&mut tx, &format!("w{w}"), 2 * i + 2, "Tested").await?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    done.cancel();
    reader.await?;
    drain(&runner).await?;

    let all: Vec<i64> =
        sqlx::query_scalar("select global_position from events order by global_position")
            .fetch_all(&pool)
            .await?;
    let seen = applied(&pool, "c").await?;
    assert_eq!(all.len(), 400);
    assert_eq!(seen.len(), all.len(), "every event applied exactly once");
    assert_eq!(
        seen.iter().copied().collect::<HashSet<_>>(),
        all.iter().copied().collect()
    );

    // Delivery order is (tx_id, global_position).
    let order: Vec<(i64, i64)> =
        sqlx::query("select tx_id, global_position from applied order by id")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    Ok(())
}

fn rand_ms(w: u64, i: i64) -> u64 {
    (w * 7 + i as u64 * 13) % 5
}

#[tokio::test]
async fn a_failing_batch_applies_nothing_and_keeps_the_checkpoint() -> anyhow::Result<()> {
    let pool = setup().await?;
    checkpoint::register(&pool, "c").await?;
    let runner = runner(&pool, "c");
    let mut conn = connect(&pool).await?;
    let mut tx = conn.begin().await?;
    insert_event(&mut tx, "s", 1, "Tested").await?;
    insert_event(&mut tx, "s", 2, "Poison").await?;
    tx.commit().await?;

    let mut failed = false;
    for _ in 0..2000 {
        match runner.step().await {
            Err(_) => {
                failed = true;
                break;
            }
            Ok(Step::Idle { .. }) => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(other) => panic!("a batch with a poison event must not apply: {other:?}"),
        }
    }
    assert!(failed);
    assert!(applied(&pool, "c").await?.is_empty());
    assert_eq!(
        checkpoint::current(&pool, "c").await?,
        Some(LogPosition::START)
    );
    Ok(())
}

#[tokio::test]
async fn two_instances_of_one_consumer_apply_each_event_once() -> anyhow::Result<()> {
    let pool = setup().await?;
    let shutdown = CancellationToken::new();
    let notifier = EventNotifier::start(pool.clone(), shutdown.clone()).await?;
    let config = RunnerConfig {
        batch_size: 7,
        poll_interval: Duration::from_millis(20),
        ..RunnerConfig::default()
    };
    // Two "processes": separate pools, same consumer name.
    let mut handles = Vec::new();
    for _ in 0..2 {
        let own_pool = PgPool::connect_with((*pool.connect_options()).clone()).await?;
        let r = ConsumerRunner::new(
            own_pool,
            Arc::new(Recorder { name: "shared" }),
            config.clone(),
            ProgressSignal::default(),
        );
        handles.push(tokio::spawn(r.run(notifier.clone(), shutdown.clone())));
    }

    let mut writers = Vec::new();
    for w in 0..4 {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = connect(&pool).await?;
            for i in 1..=50i64 {
                insert_event(&mut conn, &format!("w{w}"), i, "Tested").await?;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }

    // Generous: other tests on the same server can hold the xmin horizon back for seconds
    // (see ARCHITECTURE.md); the loop ends as soon as every event is applied.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let count: i64 = sqlx::query_scalar(
            "select events_applied from consumer_checkpoints where consumer_name = 'shared'",
        )
        .fetch_optional(&pool)
        .await?
        .unwrap_or(0);
        if count >= 200 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    for handle in handles {
        handle.await?;
    }

    let seen = applied(&pool, "shared").await?;
    assert_eq!(seen.len(), 200);
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>().len(), 200);
    Ok(())
}

#[tokio::test]
async fn the_database_refuses_to_rewrite_the_log() -> anyhow::Result<()> {
    let pool = setup().await?;
    let mut conn = connect(&pool).await?;
    insert_event(&mut conn, "s", 1, "Tested").await?;
    for statement in [
        "update events set event_type = 'Forged'",
        "delete from events",
        "truncate events",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("SL001"), "{statement}");
    }
    let count: i64 = sqlx::query_scalar("select count(*) from events where event_type = 'Tested'")
        .fetch_one(&pool)
        .await?;
    assert_eq!(count, 1);
    Ok(())
}

/// Transaction ids are numbers: 9 sorts before 10. (Ordering by their text once put 10 first,
/// and the checkpoint then skipped every event of transaction 9.)
#[tokio::test]
async fn transaction_ids_are_ordered_as_numbers_not_text() -> anyhow::Result<()> {
    let pool = setup().await?;
    let mut conn = connect(&pool).await?;
    for (stream, tx_id) in [("late", 10i64), ("early", 9)] {
        sqlx::query(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, tx_id)
             values ('Test', $1, 1, 'Tested', '1.0', '{}', '{}', $2::text::xid8)",
        )
        .bind(stream)
        .bind(tx_id.to_string())
        .execute(&mut conn)
        .await?;
    }
    let first = store::event_log::read_after(&mut conn, LogPosition::START, 1).await?;
    assert_eq!(first[0].aggregate_id, "early");
    assert_eq!(first[0].tx_id, 9);
    let next = store::event_log::read_after(&mut conn, first[0].log_position(), 10).await?;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].aggregate_id, "late");
    Ok(())
}

#[tokio::test]
async fn a_group_gives_each_consumer_the_events_after_its_own_checkpoint_in_one_transaction()
-> anyhow::Result<()> {
    let pool = setup().await?;
    for name in ["ahead", "behind"] {
        checkpoint::register(&pool, name).await?;
    }
    let mut conn = connect(&pool).await?;
    let mut positions = Vec::new();
    for seq in 1..=3 {
        positions.push(insert_event(&mut conn, "s", seq, "Tested").await?);
    }
    drain(&runner(&pool, "ahead")).await?;
    for seq in 4..=5 {
        positions.push(insert_event(&mut conn, "s", seq, "Tested").await?);
    }
    let together = group(
        &pool,
        vec![
            Arc::new(Recorder { name: "ahead" }),
            Arc::new(Recorder { name: "behind" }),
        ],
    );
    drain(&together).await?;
    assert_eq!(applied(&pool, "ahead").await?, positions, "each event once");
    assert_eq!(
        applied(&pool, "behind").await?,
        positions,
        "from its own start"
    );
    let transactions: Vec<String> = sqlx::query_scalar(
        "select distinct applied_in from applied where global_position = any($1)",
    )
    .bind(&positions[3..])
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        transactions.len(),
        1,
        "the group applied the batch to both consumers in one transaction"
    );
    for name in ["ahead", "behind"] {
        let at = checkpoint::current(&pool, name).await?.expect("registered");
        assert_eq!(
            at.position, positions[4],
            "{name}'s checkpoint moved to the end"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_consumer_that_cannot_apply_an_event_does_not_hold_back_the_rest_of_its_group()
-> anyhow::Result<()> {
    let pool = setup().await?;
    for name in ["fragile", "sturdy"] {
        checkpoint::register(&pool, name).await?;
    }
    let mut conn = connect(&pool).await?;
    let mut positions = Vec::new();
    for (seq, event_type) in [(1, "Tested"), (2, "Poison"), (3, "Tested")] {
        positions.push(insert_event(&mut conn, "s", seq, event_type).await?);
    }
    let together = group(
        &pool,
        vec![
            Arc::new(Recorder { name: "fragile" }),
            Arc::new(Sturdy { name: "sturdy" }),
        ],
    );
    assert_eq!(together.step().await?, Step::Applied(3));
    assert_eq!(applied(&pool, "sturdy").await?, positions);
    assert!(
        applied(&pool, "fragile").await?.is_empty(),
        "the failing consumer's batch rolled back"
    );
    let fragile = checkpoint::current(&pool, "fragile")
        .await?
        .expect("registered");
    assert_eq!(fragile, LogPosition::START, "and its checkpoint stayed put");
    Ok(())
}

/// Read-your-writes waits end once the consumer has passed every event committed before the
/// wait began, whether this process's runner or another process's applies them, and never
/// before.
#[tokio::test]
async fn a_read_model_wait_ends_only_once_its_consumer_has_passed_what_was_committed()
-> anyhow::Result<()> {
    let pool = setup().await?;
    let here = ProgressSignal::default();
    let recorder: Arc<dyn Projector> = Arc::new(Recorder { name: "waited_on" });
    let local = ConsumerRunner::new(
        pool.clone(),
        recorder.clone(),
        RunnerConfig::default(),
        here.clone(),
    );
    checkpoint::register(&pool, "waited_on").await?;
    let short = Duration::from_millis(30);
    let long = Duration::from_secs(30);
    let wait = |signal: ProgressSignal| {
        let (pool, recorder) = (pool.clone(), recorder.clone());
        tokio::spawn(async move {
            progress::wait_caught_up(&pool, &signal, recorder.as_ref(), long).await
        })
    };
    let mut conn = connect(&pool).await?;
    let first = insert_event(&mut conn, "s", 1, "Tested").await?;
    assert!(!progress::wait_caught_up(&pool, &here, recorder.as_ref(), short).await?);

    let waiting = wait(here.clone());
    drain(&local).await?;
    assert!(waiting.await??);
    assert_eq!(
        progress::wait_for(&pool, &here, "waited_on", first, short).await?,
        Projected::Yes
    );

    // The runner here has caught up once; an event committed after that is still waited for,
    // by either kind of wait.
    let second = insert_event(&mut conn, "s", 2, "Tested").await?;
    assert!(!progress::wait_caught_up(&pool, &here, recorder.as_ref(), short).await?);
    assert_eq!(
        progress::wait_for(&pool, &here, "waited_on", second, short).await?,
        Projected::NotYet
    );

    // Another process applies it (its runner signals nothing here): the waits here still end.
    let elsewhere = ConsumerRunner::new(
        pool.clone(),
        recorder.clone(),
        RunnerConfig::default(),
        ProgressSignal::default(),
    );
    let waiting = wait(here.clone());
    let waiting_for = {
        let (pool, here) = (pool.clone(), here.clone());
        tokio::spawn(
            async move { progress::wait_for(&pool, &here, "waited_on", second, long).await },
        )
    };
    drain(&elsewhere).await?;
    assert!(waiting.await??);
    assert_eq!(waiting_for.await??, Projected::Yes);
    assert_eq!(applied(&pool, "waited_on").await?, vec![first, second]);
    Ok(())
}
