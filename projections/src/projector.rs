use async_trait::async_trait;
use sqlx::PgConnection;
use thiserror::Error;

use crate::event_log::StoredEvent;

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

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;

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
