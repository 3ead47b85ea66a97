//! Building and running the service: the pools (`pools`), the state every handler shares, the
//! HTTP server, and the background workers (`workers`).

mod pools;
mod server;
mod workers;

pub use pools::{
    connect, connect_unflushed, connect_url, connect_without_events, ensure_database, migrate,
};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::model_group::ModelGroupServices;
use domain::organization::OrganizationServices;
use domain::team::TeamServices;
use projections::RunnerConfig;
use projections::progress::ProgressSignal;
use sqlx::PgPool;
use store::EventNotifier;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use app::commands::{Aggregates, CommandBus, Lane};
use app::keys::Vault;
use app::lookups::{LitellmCatalog, ReadModelLookups};
use app::sync::{Reconciler, SyncSettings};
use app::team_keys::{KeyCache, TeamKeys};
use app::usage::{IngestSettings, SpendLogIngestor};
use litellm::{ClientConfig, LitellmClient};

use crate::config::Config;
use crate::credentials::AdminKey;
use crate::routes;
use crate::state::AppState;

/// Aggregates are snapshotted every this many events, so loading stays flat with history.
pub const SNAPSHOT_EVERY: usize = 100;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    consumers_pool: PgPool,
    /// The reconciler's and the webhook dispatcher's connections (see `connect_without_events`).
    background_pool: PgPool,
    runner_config: RunnerConfig,
    seal_key: [u8; 32],
    reconciler: Option<Reconciler>,
    ingestor: Option<SpendLogIngestor>,
    /// Where consumers, the usage writer and maintenance run (see `build_on`).
    background: tokio::runtime::Handle,
    header_timeout: Duration,
}

impl Application {
    /// Everything on the current runtime (tests, tools).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_on(config, tokio::runtime::Handle::current()).await
    }

    /// Consumers, the usage writer and maintenance run on `background`: a runtime of their own
    /// means their bursts of work (a projection batch, a usage append) are preempted by the OS
    /// instead of queueing requests behind them on the same worker threads.
    pub async fn build_on(
        config: Config,
        background: tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        // Metrics recorded before the recorder exists are lost: install it first.
        crate::metrics::handle();
        app::metrics::register();
        let pool = connect(&config).await?;
        migrate(&pool).await?;
        let holds_pool = connect_unflushed(&config).await?;
        // One connection per consumer, the event notifier's LISTEN connection, and spare. The
        // listener is here, not in the request pool, so requests can use every connection of theirs.
        let consumers_pool =
            connect_without_events(&config, app::consumers::names().len() as u32 + 2).await?;
        let background_pool = connect_without_events(&config, 6).await?;
        // Checkpoint rows exist before anything is served, so lag is visible from the start.
        for name in app::consumers::names() {
            store::checkpoint::register(&pool, name)
                .await
                .context("registering consumers")?;
        }
        let listener = TcpListener::bind((config.host, config.port))
            .await
            .with_context(|| format!("binding {}:{}", config.host, config.port))?;
        let litellm = match &config.litellm_master_key {
            Some(master_key) => Some(
                LitellmClient::new(ClientConfig::new(
                    config.litellm_proxy_url.clone(),
                    master_key.clone(),
                ))
                .context("building the LiteLLM client")?,
            ),
            None => {
                tracing::warn!(
                    "LITELLM_MASTER_KEY is not set: LiteLLM sync and model-name checks are disabled"
                );
                None
            }
        };
        let progress = ProgressSignal::default();
        let lookups = ReadModelLookups {
            pool: pool.clone(),
            progress: progress.clone(),
            timeout: config.read_wait_timeout,
        };
        let organizations = Lane::new(
            &pool,
            OrganizationServices {
                lookups: Box::new(lookups.clone()),
            },
            SNAPSHOT_EVERY,
        );
        let model_groups = Lane::new(
            &pool,
            ModelGroupServices {
                lookups: Box::new(lookups.clone()),
                catalog: Box::new(LitellmCatalog {
                    client: litellm.clone(),
                }),
            },
            SNAPSHOT_EVERY,
        );
        let teams = Lane::new(
            &pool,
            TeamServices {
                lookups: Box::new(lookups),
            },
            SNAPSHOT_EVERY,
        );
        let jobs = Lane::new(&pool, (), SNAPSHOT_EVERY);
        let accounts = Lane::new(&pool, (), SNAPSHOT_EVERY);
        let key_cache = KeyCache::default();
        let commands = CommandBus::new(
            Aggregates {
                organizations,
                model_groups,
                teams,
                jobs,
                accounts,
            },
            key_cache.clone(),
        );
        let leases = Arc::new(app::gateway::leases::Leases::new(holds_pool.clone()));
        let ledger = app::usage::Ledger::new(pool.clone());
        let state = AppState {
            pool: pool.clone(),
            holds_pool,
            usage_recorder: app::gateway::recorder::UsageRecorder::start(
                &background,
                ledger.clone(),
                leases.clone(),
            ),
            leases,
            admin_key: Arc::new(AdminKey::new(&config.master_key)),
            commands,
            vault: Arc::new(Vault::new(config.encryption_key_bytes())),
            team_keys: TeamKeys {
                pool: pool.clone(),
                progress: progress.clone(),
                read_wait_timeout: config.read_wait_timeout,
                cache: key_cache,
            },
            progress,
            read_wait_timeout: config.read_wait_timeout,
            estimate_grace: config.estimate_grace,
            litellm_sync_enabled: config.litellm_master_key.is_some(),
            litellm: litellm.clone(),
            prices: litellm
                .clone()
                .map(|client| app::gateway::prices::PriceBook::new(client, config.prices_max_age)),
            login_limiter: Arc::new(
                crate::panel::login_limit::LoginLimiter::new(config.admin_failures_per_minute)
                    .with_device_key(
                        AdminKey::new(&config.master_key).derive(b"panel device cookies v1"),
                    ),
            ),
            ledger,
            spend_push_token: config
                .spend_ingest
                .push_token
                .as_ref()
                .map(|token| Arc::new(AdminKey::new(token))),
            trusted_proxies: config.edge.trusted_proxies.clone().into(),
            metrics_token: config
                .edge
                .metrics_token
                .as_ref()
                .map(|token| Arc::new(AdminKey::new(token))),
            body_timeout: config.edge.body_timeout,
            allow_private_webhooks: config.edge.allow_private_webhooks,
            call_ids: config.call_ids()?,
        };
        // Hard-budget calls need prices: read them once before serving (bounded, so a LiteLLM
        // that is down does not hold the start; the background refresh keeps trying).
        if let Some(book) = &state.prices {
            match tokio::time::timeout(Duration::from_secs(3), book.refresh()).await {
                Ok(Ok(models)) => tracing::info!(models, "model prices read from LiteLLM"),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "model prices could not be read from LiteLLM; hard-budget calls wait for them")
                }
                Err(_) => tracing::warn!(
                    "LiteLLM did not answer for model prices within 3 s; hard-budget calls wait for them"
                ),
            }
        }
        let ingestor = match (&litellm, config.spend_ingest.poll_every.is_zero()) {
            (Some(client), false) => Some(SpendLogIngestor::new(
                pool.clone(),
                client.clone(),
                state.call_ids.clone(),
                IngestSettings {
                    poll_every: config.spend_ingest.poll_every,
                    overlap: config.spend_ingest.overlap,
                    lookback: config.spend_ingest.lookback,
                    long_overlap: config.spend_ingest.long_overlap,
                    long_sweep_every: config.spend_ingest.long_sweep_every,
                    ..IngestSettings::default()
                },
            )),
            _ => None,
        };
        let reconciler = litellm.map(|client| {
            let settings = SyncSettings {
                resync_every: config.litellm_resync_every,
                ..SyncSettings::default()
            };
            Reconciler::new(
                background_pool.clone(),
                state.vault.clone(),
                client,
                state.progress.clone(),
                settings,
            )
        });
        Ok(Self {
            seal_key: config.seal_key(),
            listener,
            state,
            consumers_pool,
            background_pool,
            runner_config: RunnerConfig::default(),
            reconciler,
            ingestor,
            background,
            header_timeout: config.edge.header_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// Serves HTTP and runs every consumer until `shutdown` is cancelled, then drains.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let notifier = self
            .background
            .spawn(EventNotifier::start(
                self.consumers_pool.clone(),
                shutdown.clone(),
            ))
            .await?
            .context("listening for event notifications")?;
        let consumers = workers::spawn_all(
            &self.background,
            workers::Workers {
                state: &self.state,
                notifier,
                consumers_pool: &self.consumers_pool,
                background_pool: &self.background_pool,
                runner_config: &self.runner_config,
                seal_key: self.seal_key,
                reconciler: self.reconciler,
                ingestor: self.ingestor,
            },
            &shutdown,
        );
        let address = self.listener.local_addr()?;
        tracing::info!(%address, "saas-api listening");
        let app = routes::router(self.state);
        server::serve(self.listener, app, self.header_timeout, shutdown.clone()).await;
        shutdown.cancel();
        for consumer in consumers {
            let _ = consumer.await;
        }
        tracing::info!("saas-api stopped");
        Ok(())
    }
}

/// The runtime for consumers, the usage writer and maintenance (`build_on`), with `threads`
/// threads (`BACKGROUND_THREADS`) at nice `nice` (`BACKGROUND_NICE`); none with 0 threads,
/// when they share the request runtime.
pub fn background_runtime(
    threads: usize,
    nice: i32,
) -> std::io::Result<Option<tokio::runtime::Runtime>> {
    if threads == 0 {
        return Ok(None);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("saas-background")
        .on_thread_start(move || lower_priority(nice))
        .enable_all()
        .build()
        .map(Some)
}

/// Lets a background thread yield the CPU to the request threads when both want it. On Linux
/// the nice value is per thread, so the rest of the process keeps its own.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: setpriority takes plain integers and only changes the calling thread's niceness.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if result != 0 {
        tracing::debug!(nice, "could not lower a background thread's priority");
    }
}

/// Cancels the token on ctrl-c or SIGTERM.
pub async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received; draining");
    token.cancel();
}
