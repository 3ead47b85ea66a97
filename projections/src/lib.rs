//! The read side: the projector trait and its runner, every read model's fold and queries
//! (reports, audit as of an instant), progress, rebuild and verify. Events come from `store`.

pub mod accounts;
pub mod audit;
pub mod budgets;
pub mod dashboard;
pub mod jobs;
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

/// The read models: every projector whose tables the log alone rebuilds (the reactors that
/// also consume the log are registered in `app::consumers`).
pub fn read_models() -> Vec<std::sync::Arc<dyn Projector>> {
    vec![
        std::sync::Arc::new(organizations::OrganizationsProjector),
        std::sync::Arc::new(model_groups::ModelGroupsProjector),
        std::sync::Arc::new(teams::TeamsProjector),
        std::sync::Arc::new(usage::UsageProjector),
        std::sync::Arc::new(budgets::BudgetsProjector::default()),
        std::sync::Arc::new(jobs::JobsProjector),
        std::sync::Arc::new(accounts::AccountsProjector),
    ]
}
