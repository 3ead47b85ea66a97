//! The projector trait every consumer of the log implements, and its error type.

use async_trait::async_trait;
use sqlx::PgConnection;
use thiserror::Error;

use store::event_log::StoredEvent;

#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the checkpoint of {consumer} moved during a batch; the batch was rolled back")]
    CheckpointMoved { consumer: String },
    #[error("an event could not be encoded: {0}")]
    Encode(String),
    #[error("event at position {position} ({event_type}) does not decode: {source}")]
    Decode {
        position: i64,
        event_type: String,
        source: serde_json::Error,
    },
}

impl ProjectionError {
    pub fn decode(event: &StoredEvent, source: serde_json::Error) -> Self {
        Self::Decode {
            position: event.global_position,
            event_type: event.event_type.clone(),
            source,
        }
    }
}

/// Builds a read model from the event log. `apply` runs inside the transaction that also moves
/// the projector's checkpoint, so each event takes effect exactly once. Events the projector
/// does not care about are simply ignored.
/// A column a replay keeps from the live table.
#[derive(Debug, Clone, Copy)]
pub struct CarriedColumn {
    pub table: &'static str,
    pub key: &'static str,
    pub column: &'static str,
}

#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// The checkpoint name; renaming it replays the projector from the start.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events this projector reads (`None`: all). Events of other
    /// types still pass by, in order, so the checkpoint moves past them, but without their
    /// payload: most consumers skip the bulk of the log (usage), and parsing it was most of
    /// their work.
    fn interests(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether applying a batch may append events to the log (threshold alerts). Readers of
    /// the log wait for such a transaction to end; they do not wait for other projectors'.
    fn appends_events(&self) -> bool {
        false
    }

    /// The read-model tables this projector alone writes, all derived from the log: what a
    /// replay rebuilds and swaps in, and `verify` compares. Empty for reactors, whose tables
    /// hold operational state (delivery attempts, sync status) that the log cannot rebuild.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Tables outside `tables` the projector also writes (operational state it settles, such as
    /// budget holds). A rebuild gives it empty scratch copies so the live ones are untouched.
    fn shadowed_tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Columns of `tables` that are operational state, not derived from the log: a replay
    /// carries them over from the live rows (matched on `key`) and `verify` ignores them.
    fn carried_columns(&self) -> &'static [CarriedColumn] {
        &[]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies a batch during a rebuild into empty tables. Projectors may defer work that is
    /// cheaper done once over everything (roll-ups) to `finish_rebuild`.
    async fn rebuild_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        self.apply_batch(tx, events).await
    }

    /// Tables a rebuild only inserts into (nothing read back, nothing conflicting, until
    /// `finish_rebuild`): their copies are loaded without unique constraints, which are put
    /// back before `finish_rebuild` runs (a bulk load checking each row against a unique index
    /// was most of a rebuild's time).
    fn bulk_loaded_tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Called when putting a unique constraint of `bulk_loaded_tables` back finds repeats:
    /// removes the rows the live path would have skipped, so the constraint holds.
    async fn drop_repeats(&self, _tx: &mut PgConnection) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// Completes what `rebuild_batch` deferred, once, before the rebuild catches up with the
    /// live log through `apply_batch`.
    async fn finish_rebuild(&self, _tx: &mut PgConnection) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// Applies a batch in order. Projectors of high-volume events override this to write a
    /// batch in a few statements instead of a few per event.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(tx, event).await?;
        }
        Ok(())
    }
}
