//! The read side: the projector trait and its runner, every read model's fold and queries
//! (reports, audit as of an instant), progress, rebuild and verify. Events come from `store`.

pub mod alert_outbox;
pub mod audit;
pub mod budgets;
pub mod dashboard;
pub mod jobs;
pub mod litellm_sync;
pub mod model_groups;
pub mod organizations;
pub mod progress;
pub mod projector;
pub mod rebuild;
pub mod reports;
pub mod runner;
pub mod seals;
pub mod teams;
pub mod usage;

pub use projector::{ProjectionError, Projector};
pub use runner::{ConsumerRunner, RunnerConfig};

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
