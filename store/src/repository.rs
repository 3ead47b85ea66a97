//! The write side's event repository: cqrs-es's `PersistedEventRepository` over our `events` and
//! `snapshots` tables, in place of postgres-es's (same tables, same rows).
//!
//! Why our own (measured with `scripts/bench-commands`): postgres-es appends a command's events
//! with `BEGIN`, one `INSERT` per event, the snapshot statement and `COMMIT`, each a round trip,
//! and writes the snapshot's sequence into the text of its "events after the snapshot" query, so
//! every new sequence number is a new statement for PostgreSQL to parse and plan. Here a
//! command's events and its snapshot go in as ONE statement (its own transaction: one round
//! trip, one commit), every query is a prepared statement with bound parameters, and the append
//! hands back the global position of each event, which the command bus answers with. The bus
//! appends through `EventStore::append` (many commands' events in one statement, each with its
//! own metadata); cqrs-es loads aggregates through the trait.

use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;
use sqlx::{PgPool, Row};

/// An aggregate's state after the last event of an append, and the snapshot's number.
#[derive(Debug)]
pub struct Snapshot {
    pub state: Value,
    pub number: usize,
}

#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
}

impl EventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const SELECT_EVENTS: &str =
    "select aggregate_id, sequence, event_type, event_version, payload, metadata
   from events where aggregate_type = $1 and aggregate_id = $2 and sequence > $3
  order by sequence";

/// The events, in sequence order, then the snapshot (if the command brings one), in one
/// statement. The snapshot keeps the newest state: a stale writer cannot get here anyway, as its
/// events would collide with the newer ones on the primary key first.
const APPEND: &str = "with appended as (
    insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
    select $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json
      from unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
           as e(sequence, event_type, event_version, payload, metadata)
     order by e.sequence
    returning global_position
), snapshot as (
    insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
    select $1, $2, $8, $9, $10::json where $10::text is not null
    on conflict (aggregate_type, aggregate_id) do update
       set last_sequence = excluded.last_sequence, current_snapshot = excluded.current_snapshot,
           payload = excluded.payload
     where snapshots.last_sequence < excluded.last_sequence
)
select global_position from appended order by global_position";

/// postgres-es's mapping, kept: a duplicate key is a lost race (optimistic lock); a lost
/// connection is a connection error; anything else (our unique-claims trigger's SL409 among
/// them) goes up unchanged for the command layer to read.
fn persistence_error(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        _ if crate::db_errors::is_unavailable(&error) => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}

fn sequence(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl EventStore {
    /// Appends one aggregate's events (in sequence order, each with its own metadata) and, if
    /// given, its snapshot at the last of them, in one statement and one commit. Returns each
    /// event's global position, in the events' order.
    pub async fn append<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot: Option<Snapshot>,
    ) -> Result<Vec<i64>, PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(Vec::new());
        };
        let text = |value: &Value| {
            serde_json::to_string(value).map_err(|e| PersistenceError::UnknownError(Box::new(e)))
        };
        let mut sequences = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metadata = Vec::with_capacity(events.len());
        for event in events {
            sequences.push(sequence(event.sequence));
            types.push(event.event_type.as_str());
            versions.push(event.event_version.as_str());
            payloads.push(text(&event.payload)?);
            metadata.push(text(&event.metadata)?);
        }
        let last_sequence = sequences.last().copied().unwrap_or_default();
        let (snapshot, current_snapshot) = match &snapshot {
            Some(snapshot) => (Some(text(&snapshot.state)?), sequence(snapshot.number)),
            None => (None, 0),
        };
        let positions: Vec<i64> = sqlx::query_scalar(APPEND)
            .bind(A::TYPE)
            .bind(first.aggregate_id.as_str())
            .bind(&sequences)
            .bind(&types)
            .bind(&versions)
            .bind(&payloads)
            .bind(&metadata)
            .bind(last_sequence)
            .bind(current_snapshot)
            .bind(snapshot)
            .fetch_all(&self.pool)
            .await
            .map_err(persistence_error)?;
        Ok(positions)
    }

    async fn events_after<A: Aggregate>(
        &self,
        aggregate_id: &str,
        after: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows = sqlx::query(SELECT_EVENTS)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(sequence(after))
            .fetch_all(&self.pool)
            .await
            .map_err(persistence_error)?;
        rows.iter().map(serialized::<A>).collect()
    }

    /// Every event of one aggregate, or of all aggregates of the type, into a replay stream.
    async fn replay<A: Aggregate>(
        &self,
        aggregate_id: Option<&str>,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = match aggregate_id {
            Some(id) => self.events_after::<A>(id, 0).await?,
            None => {
                let rows = sqlx::query(
                    "select aggregate_id, sequence, event_type, event_version, payload, metadata
                       from events where aggregate_type = $1 order by aggregate_id, sequence",
                )
                .bind(A::TYPE)
                .fetch_all(&self.pool)
                .await
                .map_err(persistence_error)?;
                rows.iter().map(serialized::<A>).collect::<Result<_, _>>()?
            }
        };
        let (mut feed, stream) = ReplayStream::new(events.len().max(1));
        for event in events {
            feed.push(Ok(event)).await?;
        }
        Ok(stream)
    }
}

fn serialized<A: Aggregate>(
    row: &sqlx::postgres::PgRow,
) -> Result<SerializedEvent, PersistenceError> {
    Ok(SerializedEvent::new(
        row.try_get("aggregate_id").map_err(persistence_error)?,
        row.try_get::<i64, _>("sequence")
            .map_err(persistence_error)? as usize,
        A::TYPE.to_owned(),
        row.try_get("event_type").map_err(persistence_error)?,
        row.try_get("event_version").map_err(persistence_error)?,
        row.try_get("payload").map_err(persistence_error)?,
        row.try_get("metadata").map_err(persistence_error)?,
    ))
}

impl PersistedEventRepository for EventStore {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.events_after::<A>(aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.events_after::<A>(aggregate_id, last_sequence).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let row = sqlx::query(
            "select last_sequence, current_snapshot, payload from snapshots
              where aggregate_type = $1 and aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(persistence_error)?;
        row.map(|row| {
            Ok(SerializedSnapshot {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: row.try_get("payload").map_err(persistence_error)?,
                current_sequence: row
                    .try_get::<i64, _>("last_sequence")
                    .map_err(persistence_error)? as usize,
                current_snapshot: row
                    .try_get::<i64, _>("current_snapshot")
                    .map_err(persistence_error)? as usize,
            })
        })
        .transpose()
    }

    /// cqrs-es's commit path. The command bus appends through `EventStore::append` instead;
    /// this stays for the trait. cqrs-es hands over a snapshot of the state at the last
    /// multiple of its snapshot size, which may be before the last event, and this signature
    /// does not say where: so no snapshot is written here (loading is then slower, never wrong).
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        self.append::<A>(events, None).await.map(drop)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.replay::<A>(Some(aggregate_id)).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.replay::<A>(None).await
    }
}
