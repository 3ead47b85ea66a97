use std::sync::Arc;
use std::time::Duration;

use domain::job::Job;
use domain::model_group::ModelGroup;
use domain::organization::Organization;
use domain::team::Team;
use projections::progress::ProgressSignal;
use sqlx::PgPool;

use crate::auth::AdminKey;
use crate::commands::AggregateLocks;
use crate::keys::Vault;
use crate::usage::Ledger;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Commits without waiting for the WAL flush: budget holds only (see `connect_unflushed`).
    pub holds_pool: PgPool,
    /// This process's budget leases for hard-mode teams.
    pub leases: Arc<crate::gateway::leases::Leases>,
    /// Writes gateway usage in batches.
    pub usage_recorder: crate::gateway::recorder::UsageRecorder,
    pub admin_key: Arc<AdminKey>,
    pub organizations: Arc<store::repository::Cqrs<Organization>>,
    pub model_groups: Arc<store::repository::Cqrs<ModelGroup>>,
    pub teams: Arc<store::repository::Cqrs<Team>>,
    pub jobs: Arc<store::repository::Cqrs<Job>>,
    pub vault: Arc<Vault>,
    pub locks: Arc<AggregateLocks>,
    pub progress: ProgressSignal,
    pub read_wait_timeout: Duration,
    /// How long a stream that ended without usage waits before its estimate is recorded, so
    /// that LiteLLM's own row of the request (pushed or pulled) is recorded instead.
    pub estimate_grace: Duration,
    /// Whether a reconciler keeps LiteLLM in sync (needs `LITELLM_MASTER_KEY`).
    pub litellm_sync_enabled: bool,
    /// For live comparisons (reconciliation); `None` without `LITELLM_MASTER_KEY`.
    pub litellm: Option<litellm::LitellmClient>,
    pub ledger: Ledger,
    /// Digest of `SPEND_PUSH_TOKEN`; push is off without it.
    pub spend_push_token: Option<Arc<AdminKey>>,
    /// Virtual key -> team, invalidated by team events.
    pub key_cache: crate::team_auth::KeyCache,
    /// LiteLLM's per-token prices (budget holds); `None` without LiteLLM.
    pub prices: Option<crate::gateway::prices::PriceBook>,
    /// Failed admin panel logins per client address.
    pub login_limiter: Arc<crate::panel::login_limit::LoginLimiter>,
}
