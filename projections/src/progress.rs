//! How far the read models are: "has position N been projected?" for read-your-writes, and
//! per-consumer lag for `/ready`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Row};
use tokio::sync::watch;

/// Fired by this process's runners after each committed batch, so a waiting request wakes at
/// once; waits still poll, because another process may be the one projecting.
#[derive(Clone)]
pub struct ProgressSignal(Arc<watch::Sender<u64>>);

impl Default for ProgressSignal {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl ProgressSignal {
    pub fn bump(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projected {
    Yes,
    NotYet,
    /// No committed event has this position.
    UnknownPosition,
}

/// Whether `consumer` has applied the event at `position`.
pub async fn is_projected(
    pool: &PgPool,
    consumer: &str,
    position: i64,
) -> Result<Projected, sqlx::Error> {
    let row = sqlx::query(
        "select (e.tx_id, e.global_position) <= (c.last_tx_id, c.last_position) as done
           from events e
           left join consumer_checkpoints c on c.consumer_name = $1
          where e.global_position = $2",
    )
    .bind(consumer)
    .bind(position)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => Projected::UnknownPosition,
        Some(row) => match row.try_get::<Option<bool>, _>("done")? {
            Some(true) => Projected::Yes,
            _ => Projected::NotYet,
        },
    })
}

/// Waits until `consumer` has applied `position`, up to `timeout`.
pub async fn wait_for(
    pool: &PgPool,
    signal: &ProgressSignal,
    consumer: &str,
    position: i64,
    timeout: Duration,
) -> Result<Projected, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut ticks = signal.subscribe();
    let mut pause = Duration::from_millis(2);
    loop {
        ticks.mark_unchanged();
        let state = is_projected(pool, consumer, position).await?;
        if state != Projected::NotYet || tokio::time::Instant::now() >= deadline {
            return Ok(state);
        }
        let sleep_until = (tokio::time::Instant::now() + pause).min(deadline);
        tokio::select! {
            _ = ticks.changed() => {}
            _ = tokio::time::sleep_until(sleep_until) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumerLag {
    pub consumer: String,
    pub last_position: i64,
    /// Events committed after the checkpoint, counted up to `LAG_COUNT_CAP`.
    pub pending_events: i64,
    pub events_applied: i64,
}

/// Low enough that `/ready` stays cheap with eight consumers far behind (usage comes in bulk).
pub const LAG_COUNT_CAP: i64 = 10_000;

pub async fn lag(pool: &PgPool) -> Result<Vec<ConsumerLag>, sqlx::Error> {
    let rows = sqlx::query(
        "select c.consumer_name, c.last_position, c.events_applied,
                (select count(*) from (select 1 from events e
                   where (e.tx_id, e.global_position) > (c.last_tx_id, c.last_position)
                   limit $1) pending) as pending
           from consumer_checkpoints c
          order by c.consumer_name",
    )
    .bind(LAG_COUNT_CAP)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ConsumerLag {
                consumer: row.try_get("consumer_name")?,
                last_position: row.try_get("last_position")?,
                pending_events: row.try_get("pending")?,
                events_applied: row.try_get("events_applied")?,
            })
        })
        .collect()
}

/// Waits until `projector` has applied every event of its interest committed before this call,
/// up to `timeout`; returns whether it got there. Command-side lookups use it so they never
/// decide on a read model that misses a recent event. Events of types the projector does not
/// read are not waited for: a lookup in the organizations read model does not wait while the
/// projector walks past a burst of team events that cannot change its answer.
pub async fn wait_caught_up(
    pool: &PgPool,
    signal: &ProgressSignal,
    projector: &dyn crate::projector::Projector,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let interests: Option<Vec<String>> = projector
        .interests()
        .map(|types| types.iter().map(|t| (*t).to_owned()).collect());
    // Every event at or below the head read on the first look (committed before this call)
    // must be applied; later events are not waited for. The head is read in the same statement
    // as the first check, a round trip less on every lookup.
    let mut head: Option<i64> = None;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut ticks = signal.subscribe();
    let mut pause = Duration::from_millis(1);
    loop {
        ticks.mark_unchanged();
        // The plain `tx_id >=` bound lets the planner walk the (tx_id, global_position) index
        // from the checkpoint instead of misestimating the row comparison.
        let (seen, pending): (Option<i64>, bool) = sqlx::query_as(
            "select h.head, exists(select 1 from consumer_checkpoints c, events e
                            where c.consumer_name = $1 and e.global_position <= h.head
                              and e.tx_id >= c.last_tx_id
                              and (e.tx_id, e.global_position) > (c.last_tx_id, c.last_position)
                              and ($3::text[] is null or e.aggregate_type = any($3)))
               from (select coalesce($2::bigint, (select max(global_position) from events)) as head) h",
        )
        .bind(projector.name())
        .bind(head)
        .bind(interests.as_deref())
        .fetch_one(pool)
        .await?;
        head = head.or(seen);
        if !pending {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        let sleep_until = (tokio::time::Instant::now() + pause).min(deadline);
        tokio::select! {
            _ = ticks.changed() => {}
            _ = tokio::time::sleep_until(sleep_until) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
