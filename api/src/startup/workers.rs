//! Every background worker of a process, started in one place: the log's consumers, the key
//! cache's listener, the webhook dispatcher, the price refresh, spend ingestion, the LiteLLM
//! reconciler, and the periodic sweeps (lapsed holds, idle leases, expired state).

use std::sync::Arc;
use std::time::Duration;

use app::sync::Reconciler;
use app::usage::SpendLogIngestor;
use projections::{ConsumerRunner, RunnerConfig};
use sqlx::PgPool;
use store::EventNotifier;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// What the workers need from the application being started.
pub(super) struct Workers<'a> {
    pub state: &'a AppState,
    pub notifier: EventNotifier,
    pub consumers_pool: &'a PgPool,
    pub background_pool: &'a PgPool,
    pub runner_config: &'a RunnerConfig,
    pub seal_key: [u8; 32],
    pub reconciler: Option<Reconciler>,
    pub ingestor: Option<SpendLogIngestor>,
}

/// Starts every worker on `background`; each stops when `shutdown` is cancelled.
pub(super) fn spawn_all(
    background: &tokio::runtime::Handle,
    w: Workers<'_>,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut consumers = Vec::new();
    for group in app::consumers::groups(w.seal_key) {
        let runner = ConsumerRunner::group(
            w.consumers_pool.clone(),
            group,
            w.runner_config.clone(),
            w.state.progress.clone(),
        );
        consumers.push(background.spawn(runner.run(w.notifier.clone(), shutdown.clone())));
    }
    consumers.push(
        background.spawn(
            w.state
                .team_keys
                .cache
                .clone()
                .listen(w.state.pool.clone(), shutdown.clone()),
        ),
    );
    consumers.push(
        background.spawn(
            app::webhooks::Dispatcher::new(
                w.background_pool.clone(),
                w.state.vault.clone(),
                w.state.allow_private_webhooks,
            )
            .run(shutdown.clone()),
        ),
    );
    if let Some(prices) = w.state.prices.clone() {
        consumers.push(
            background.spawn(prices.run(app::gateway::prices::REFRESH_EVERY, shutdown.clone())),
        );
    }
    if let Some(ingestor) = w.ingestor {
        consumers.push(background.spawn(ingestor.run(shutdown.clone())));
    }
    if let Some(reconciler) = w.reconciler {
        consumers.push(background.spawn(reconciler.run(shutdown.clone())));
    }
    consumers.push(background.spawn(expire_budget_holds(w.state.pool.clone(), shutdown.clone())));
    consumers.push(background.spawn(hand_back_idle_leases(
        w.state.leases.clone(),
        shutdown.clone(),
    )));
    consumers.push(background.spawn(purge_expired_state(w.state.pool.clone(), shutdown.clone())));
    consumers
}

/// Hourly: idempotency keys past their retention and admin sessions that can no longer be used.
async fn purge_expired_state(pool: PgPool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => {
                match crate::idempotency::purge_expired(&pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired idempotency keys removed"),
                    Err(error) => tracing::warn!(%error, "could not purge idempotency keys"),
                }
                match crate::panel::session::purge_expired(&pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired admin sessions removed"),
                    Err(error) => tracing::warn!(%error, "could not purge admin sessions"),
                }
            }
        }
    }
}

/// Releases, every minute, budget holds of requests that never settled (their process died).
async fn expire_budget_holds(pool: PgPool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => match projections::budgets::holds::expire(&pool).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(teams = n, "lapsed budget holds released"),
                Err(error) => tracing::warn!(%error, "could not release lapsed budget holds"),
            },
        }
    }
}

/// Hands back budget leases a second after their team's last request, and all at shutdown.
async fn hand_back_idle_leases(
    leases: Arc<app::gateway::leases::Leases>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => leases.hand_back_idle(Duration::from_secs(1)).await,
        }
    }
    leases.hand_back_all().await;
}
