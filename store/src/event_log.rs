//! Reading the event log in a global order that never skips a late-committing event.
//!
//! `global_position` is handed out at INSERT time, so a transaction can commit position 5 while
//! position 4 is still in flight. A reader that advanced past 5 would miss 4 forever. We order
//! by `(tx_id, global_position)` and only read events whose transaction id is below the oldest
//! transaction still running (`pg_snapshot_xmin`): every such transaction has finished, and any
//! transaction that commits later has a larger id, so it sorts after everything read so far.
//!
//! "Still running" counts only transactions that may append events: those on connections named
//! `NO_EVENTS_APPLICATION` (projector batches, budget holds, the LiteLLM reconciler, webhook
//! deliveries: none of them appends) and those of other databases on the same server are left
//! out, so one consumer's batch does not hold every other consumer back, and neither does
//! LiteLLM's own database.

use chrono::{DateTime, Utc};
use domain::usage::USAGE_AGGREGATE;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::{PgConnection, Row, ValueRef, postgres::PgRow};

/// The `application_name` of connections whose transactions never append events. A projector
/// that appends events (threshold alerts) renames its transaction.
pub const NO_EVENTS_APPLICATION: &str = "saas-no-events";

/// The `application_name` a projector's batch takes when it may append events: any name but
/// `NO_EVENTS_APPLICATION` would do; this one says why.
pub const APPENDING_PROJECTOR_APPLICATION: &str = "saas-projector-appending";

/// The oldest transaction id that may still commit events into this database's log: the
/// smallest id in progress, ignoring projector transactions and other databases (see the
/// module's notes), or the next id to be handed out if none. A transaction seen in progress
/// whose backend cannot be found any more (it has just ended) still counts: cautious, and gone
/// by the next read. The reader's own transaction counts too (the snapshot does not list it):
/// a projector that appends events in its batch must not read past its own id, or its own
/// events would land behind the checkpoint it is about to write. (`least` skips the NULL of a
/// transaction without an id.)
const HORIZON: &str = "(select least(coalesce(
        (select min(x) from pg_snapshot_xip(pg_current_snapshot()) x
          where x::xid not in (select a.backend_xid from pg_stat_get_activity(null) a
                                where a.backend_xid is not null
                                  and (a.datid <> (select oid from pg_database
                                                    where datname = current_database())
                                       or a.application_name = 'saas-no-events'))),
        pg_snapshot_xmax(pg_current_snapshot())), pg_current_xact_id_if_assigned()))";

#[cfg(test)]
mod horizon_tests {
    #[test]
    fn the_horizon_names_the_no_events_connections() {
        assert!(super::HORIZON.contains(&format!("'{}'", super::NO_EVENTS_APPLICATION)));
    }
}

/// A point in the global order: the transaction id and position of the last event read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogPosition {
    pub tx_id: u64,
    pub position: i64,
}

impl LogPosition {
    pub const START: Self = Self {
        tx_id: 0,
        position: 0,
    };
}

/// One event as stored, with its place in the global order.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub global_position: i64,
    pub tx_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    /// The event's link in its stream's hash chain (when the query selected it).
    pub hash: Option<Vec<u8>>,
    /// For usage records read by consumers: the payload's JSON text as stored, left unparsed
    /// and unchecked (`payload` is then null). `decode` reads it straight into the event type;
    /// building a generic JSON tree for each of a million records first was most of a
    /// rebuild's CPU, and checking the text before decoding it scanned it twice.
    pub raw_payload: Option<String>,
}

impl StoredEvent {
    pub fn log_position(&self) -> LogPosition {
        LogPosition {
            tx_id: self.tx_id,
            position: self.global_position,
        }
    }

    /// A metadata value written by `CommandMetadata`, e.g. `actor`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// Decodes the payload into a domain event enum (or any view of it).
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        match &self.raw_payload {
            Some(raw) => serde_json::from_str(raw),
            None => E::deserialize(&self.payload),
        }
    }

    pub fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Self::from_row_with(row, false)
    }

    /// `raw_usage`: usage records in their current shape keep their payload as text.
    fn from_row_with(row: &PgRow, raw_usage: bool) -> Result<Self, sqlx::Error> {
        let event_type: String = row.try_get("event_type")?;
        let event_version: String = row.try_get("event_version")?;
        let aggregate_type: String = row.try_get("aggregate_type")?;
        let mut raw_payload = None;
        let mut payload = Value::Null;
        if raw_usage
            && aggregate_type == USAGE_AGGREGATE
            && !domain::upcast::needs_upcast(&event_type, &event_version)
        {
            // A `json` column's value is its text, in either wire format.
            let value = row.try_get_raw("payload")?;
            if !value.is_null() {
                let text = value.as_str().map_err(|source| sqlx::Error::ColumnDecode {
                    index: "payload".into(),
                    source,
                })?;
                raw_payload = Some(text.to_owned());
            }
        } else if let Some(stored) = row.try_get::<Option<Value>, _>("payload")? {
            // Older shapes of an event are read in the current one (domain::upcast).
            payload = domain::upcast::upcast(&event_type, &event_version, stored);
        }
        Ok(Self {
            global_position: row.try_get("global_position")?,
            tx_id: parse_xid(row.try_get("tx_text")?)?,
            aggregate_type,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type,
            event_version,
            payload,
            metadata: row
                .try_get::<Option<Value>, _>("metadata")?
                .unwrap_or(Value::Null),
            recorded_at: row.try_get("recorded_at")?,
            hash: row.try_get("hash").ok(),
            raw_payload,
        })
    }
}

/// sqlx has no xid8 type; we move transaction ids through SQL as text.
pub fn parse_xid(text: String) -> Result<u64, sqlx::Error> {
    text.parse()
        .map_err(|e| sqlx::Error::Decode(format!("bad xid8 {text:?}: {e}").into()))
}

/// Up to `limit` events after `after`, in global order, all from finished transactions.
pub async fn read_after(
    conn: &mut PgConnection,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    read_after_for(conn, after, limit, None).await
}

/// Like `read_after`, but only events of the `interests` aggregate types carry their payload
/// and metadata (the others come as JSON nulls, to keep the order and move checkpoints).
pub async fn read_after_for(
    conn: &mut PgConnection,
    after: LogPosition,
    limit: i64,
    interests: Option<&[&str]>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    // language=PostgreSQL
    sqlx::query(
        // The text copy of tx_id needs its own name: `order by tx_id` would otherwise sort by the
        // text (so "10" < "9", and no index) instead of the xid8 column.
        &format!(
            "select global_position, tx_id::text as tx_text, aggregate_type, aggregate_id, sequence,
                event_type, event_version,
                case when $4::text[] is null or aggregate_type = any($4) then payload end as payload,
                case when $4::text[] is null or aggregate_type = any($4) then metadata end as metadata,
                recorded_at, hash
           from events e
          where (e.tx_id, e.global_position) > ($1::text::xid8, $2)
            and e.tx_id < {HORIZON}
          order by e.tx_id, e.global_position
          limit $3"
        ),
    )
    .bind(after.tx_id.to_string())
    .bind(after.position)
    .bind(limit)
    .bind(interests)
    // Each row becomes an event as it arrives, so a batch is not held twice (rows and events).
    .fetch(&mut *conn)
    .and_then(|row| std::future::ready(StoredEvent::from_row_with(&row, true)))
    .try_collect()
    .await
}

/// Whether events after `after` exist that `read_after` cannot return yet because an older
/// transaction is still running. The caller should look again soon rather than wait for a
/// notification that the blocking transaction (which may write no event) never sends.
pub async fn has_events_behind_horizon(
    conn: &mut PgConnection,
    after: LogPosition,
) -> Result<bool, sqlx::Error> {
    // Not `exists(...)`: with a generic plan Postgres scans the whole table for it; an ordered
    // `limit 1` walks the (tx_id, global_position) index.
    sqlx::query_scalar(
        "select (select global_position from events
                  where (tx_id, global_position) > ($1::text::xid8, $2)
                  order by tx_id, global_position limit 1) is not null",
    )
    .bind(after.tx_id.to_string())
    .bind(after.position)
    .fetch_one(&mut *conn)
    .await
}

/// Every event of one aggregate, in its own sequence order (for history and as-of queries).
pub async fn read_stream(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "select global_position, tx_id::text as tx_text, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
           from events
          where aggregate_type = $1 and aggregate_id = $2
          order by sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// An aggregate as its own events say now, folded from every one (no snapshot, no read model):
/// for checks that must see a change the moment it commits. An event that does not decode is a
/// `sqlx::Error::Decode`.
pub async fn fold<A: cqrs_es::Aggregate + Default>(
    conn: &mut PgConnection,
    aggregate_id: &str,
) -> Result<A, sqlx::Error> {
    let mut aggregate = A::default();
    for event in read_stream(conn, A::TYPE, aggregate_id).await? {
        let decoded: A::Event = event
            .decode()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        aggregate.apply(decoded);
    }
    Ok(aggregate)
}

/// The global position of an aggregate's newest event: what a command reports it wrote at.
pub async fn stream_head(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "select global_position from events
          where aggregate_type = $1 and aggregate_id = $2
          order by sequence desc limit 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(&mut *conn)
    .await
}

/// The payload of the newest event of `event_type` in a stream (its variant's fields), if any.
pub async fn newest_payload(
    pool: &sqlx::PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    event_type: &str,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let payload: Option<Option<serde_json::Value>> = sqlx::query_scalar(
        "select payload::jsonb -> $3 from events
          where aggregate_type = $1 and aggregate_id = $2 and event_type = $3
          order by sequence desc limit 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event_type)
    .fetch_optional(pool)
    .await?;
    Ok(payload.flatten())
}
