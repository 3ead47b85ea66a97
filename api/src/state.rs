//! What every handler shares: pools, the command bus, the workers' handles and settings.

use std::sync::Arc;
use std::time::Duration;

use app::commands::CommandBus;
use app::keys::Vault;
use app::team_keys::TeamKeys;
use app::usage::Ledger;
use projections::progress::ProgressSignal;
use sqlx::PgPool;

use crate::credentials::AdminKey;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Commits without waiting for the WAL flush: budget holds only (see `connect_unflushed`).
    pub holds_pool: PgPool,
    /// This process's budget leases for hard-mode teams.
    pub leases: Arc<app::gateway::leases::Leases>,
    /// Writes gateway usage in batches.
    pub usage_recorder: app::gateway::recorder::UsageRecorder,
    pub admin_key: Arc<AdminKey>,
    /// Every command of every aggregate runs through it.
    pub commands: Arc<CommandBus>,
    pub vault: Arc<Vault>,
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
    /// Virtual key -> team, cached and invalidated by team events.
    pub team_keys: TeamKeys,
    /// LiteLLM's per-token prices (budget holds); `None` without LiteLLM.
    pub prices: Option<app::gateway::prices::PriceBook>,
    /// Failed admin panel logins per client address.
    pub login_limiter: Arc<crate::panel::login_limit::LoginLimiter>,
    /// Peers whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Digest of `METRICS_TOKEN`; `/metrics` is open without it.
    pub metrics_token: Option<Arc<AdminKey>>,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// Webhooks may target loopback, private and link-local addresses (development only).
    pub allow_private_webhooks: bool,
    /// Issues the call id each gateway call is sent with and recognises it in LiteLLM's rows.
    pub call_ids: app::usage::CallIds,
}

impl AppState {
    /// The client address failures are counted against (see `login_limit::client_address`).
    pub fn client_address(&self, parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
        crate::panel::login_limit::client_address(
            &parts.extensions,
            &parts.headers,
            &self.trusted_proxies,
        )
    }
}
