//! Per-consumer checkpoints. A consumer locks its row for the length of a batch, so two
//! processes never apply the same events, and moves it in the batch's own transaction.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::event_log::{LogPosition, parse_xid};

/// Where a checkpoint row (`tx_id` as text, `last_position`) stands.
fn position_of(row: &PgRow) -> Result<LogPosition, sqlx::Error> {
    Ok(LogPosition {
        tx_id: parse_xid(row.try_get("tx_id")?)?,
        position: row.try_get("last_position")?,
    })
}

/// Creates the consumer's row if this is its first run.
pub async fn register(pool: &PgPool, consumer: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into consumer_checkpoints (consumer_name) values ($1) on conflict do nothing",
    )
    .bind(consumer)
    .execute(pool)
    .await?;
    Ok(())
}

/// Locks whichever of `consumers`' checkpoint rows no one else holds (another process applying
/// a batch right now) and returns their positions, in one statement; the others, and consumers
/// never registered, are left out this time.
pub async fn claim_all(
    conn: &mut PgConnection,
    consumers: &[&str],
) -> Result<Vec<(String, LogPosition)>, sqlx::Error> {
    let rows = sqlx::query(
        "select consumer_name, last_tx_id::text as tx_id, last_position from consumer_checkpoints
          where consumer_name = any($1) order by consumer_name for update skip locked",
    )
    .bind(consumers)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("consumer_name")?, position_of(row)?)))
        .collect()
}

/// One checkpoint's move within `advance_all`.
#[derive(Debug, Clone)]
pub struct Move {
    pub consumer: String,
    pub from: LogPosition,
    pub applied: i64,
}

/// Moves every checkpoint in `moves` from its `from` to `to`, in one statement. A
/// compare-and-set on top of the row locks: a checkpoint no longer at its `from` is not written,
/// and the caller must roll back (this returns false unless every one moved), so a batch can
/// never be applied twice even if a lock were somehow lost.
pub async fn advance_all(
    conn: &mut PgConnection,
    moves: &[Move],
    to: LogPosition,
) -> Result<bool, sqlx::Error> {
    let names: Vec<&str> = moves.iter().map(|m| m.consumer.as_str()).collect();
    let from_tx: Vec<String> = moves.iter().map(|m| m.from.tx_id.to_string()).collect();
    let from_position: Vec<i64> = moves.iter().map(|m| m.from.position).collect();
    let applied: Vec<i64> = moves.iter().map(|m| m.applied).collect();
    let updated = sqlx::query(
        "update consumer_checkpoints c
            set last_tx_id = $1::text::xid8, last_position = $2,
                events_applied = c.events_applied + m.applied, updated_at = now()
           from unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[])
                as m(consumer_name, from_tx, from_position, applied)
          where c.consumer_name = m.consumer_name and c.last_tx_id = m.from_tx::xid8
            and c.last_position = m.from_position",
    )
    .bind(to.tx_id.to_string())
    .bind(to.position)
    .bind(&names)
    .bind(&from_tx)
    .bind(&from_position)
    .bind(&applied)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(updated == moves.len() as u64)
}

/// The committed checkpoint, without locking (for status and lag reports).
pub async fn current(pool: &PgPool, consumer: &str) -> Result<Option<LogPosition>, sqlx::Error> {
    let row = sqlx::query(
        "select last_tx_id::text as tx_id, last_position from consumer_checkpoints
          where consumer_name = $1",
    )
    .bind(consumer)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(position_of).transpose()
}

/// Locks the consumer's row (a live runner skips a locked checkpoint, so it pauses) and reads
/// where it stands; the lock lasts until `conn`'s transaction ends. For rebuild's swap.
pub async fn lock(conn: &mut PgConnection, consumer: &str) -> Result<LogPosition, sqlx::Error> {
    let row = sqlx::query(
        "select last_tx_id::text as tx_id, last_position from consumer_checkpoints
          where consumer_name = $1 for update",
    )
    .bind(consumer)
    .fetch_one(&mut *conn)
    .await?;
    position_of(&row)
}

/// Sets the checkpoint outright, with how many events the consumer has applied (a rebuilt read
/// model takes the live one's place at the position it was rebuilt to).
pub async fn set(
    conn: &mut PgConnection,
    consumer: &str,
    at: LogPosition,
    events_applied: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update consumer_checkpoints
            set last_tx_id = $2::text::xid8, last_position = $3, events_applied = $4,
                updated_at = now()
          where consumer_name = $1",
    )
    .bind(consumer)
    .bind(at.tx_id.to_string())
    .bind(at.position)
    .bind(events_applied)
    .execute(conn)
    .await?;
    Ok(())
}
