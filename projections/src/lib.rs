//! The read side: the global-order event-log reader, consumer checkpoints, projectors and the
//! read models they keep.

pub mod alert_outbox;
pub mod append;
pub mod audit;
pub mod budgets;
pub mod checkpoint;
pub mod dashboard;
pub mod event_log;
pub mod jobs;
pub mod litellm_sync;
pub mod model_groups;
pub mod notifier;
pub mod organizations;
pub mod progress;
pub mod projector;
pub mod rebuild;
pub mod reports;
pub mod runner;
pub mod seals;
pub mod teams;
pub mod usage;

pub use event_log::{LogPosition, StoredEvent};
pub use notifier::EventNotifier;
pub use projector::{ProjectionError, Projector};
pub use runner::{ConsumerRunner, RunnerConfig};

/// The schema of the event store and every read model, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Every projector the service runs, in one place so `serve` and tests start the same set.
pub fn all_projectors() -> Vec<std::sync::Arc<dyn Projector>> {
    vec![
        std::sync::Arc::new(organizations::OrganizationsProjector),
        std::sync::Arc::new(model_groups::ModelGroupsProjector),
        std::sync::Arc::new(teams::TeamsProjector),
        std::sync::Arc::new(litellm_sync::SyncMarker),
        std::sync::Arc::new(usage::UsageProjector),
        std::sync::Arc::new(budgets::BudgetsProjector),
        std::sync::Arc::new(jobs::JobsProjector),
        std::sync::Arc::new(alert_outbox::AlertOutbox),
    ]
}
