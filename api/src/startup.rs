//! Building and running the service: database, migrations, HTTP server and consumers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cqrs_es::CqrsFramework;
use cqrs_es::persist::PersistedEventStore;
use domain::model_group::ModelGroupServices;
use domain::organization::OrganizationServices;
use domain::team::TeamServices;
use projections::progress::ProgressSignal;
use projections::{ConsumerRunner, RunnerConfig};
use secrecy::ExposeSecret;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use store::EventNotifier;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use app::commands::{Aggregates, CommandBus};
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
}

/// Creates the database if it does not exist (tolerating a concurrent creator).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    if Postgres::database_exists(url)
        .await
        .context("connecting to PostgreSQL")?
    {
        return Ok(());
    }
    tracing::info!("database does not exist; creating it");
    match Postgres::create_database(url).await {
        Ok(()) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
        Err(e) => Err(e).context("creating the database"),
    }
}

pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    let url = config.database_url.expose_secret();
    ensure_database(url).await?;
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
    PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to the database")
}

/// A small pool whose commits do not wait for the WAL flush. Only for budget holds: a hold is
/// a reservation in front of a request, not a record of money; if PostgreSQL itself crashed
/// and lost the last milliseconds of holds, the requests they guarded failed with it. Usage is
/// never written through this pool.
pub async fn connect_unflushed(config: &Config) -> anyhow::Result<PgPool> {
    // Holds never append events either, so the log's readers need not wait for them.
    connect_without_events(config, (config.db_pool_size / 2).max(2)).await
}

/// Connections for work that never appends events, named so (`NO_EVENTS_APPLICATION`) that the
/// log's readers do not wait for their transactions, and committing without waiting for the WAL
/// flush. Used by the consumers (one connection each and a spare, so under a burst of commands
/// they do not queue behind requests; a read model and its checkpoint move in one transaction,
/// so a lost commit loses both and the batch is applied again) and by the background workers
/// whose state is operational (LiteLLM sync status, webhook deliveries: a lost last write means
/// a repeated, idempotent sync or delivery).
pub async fn connect_without_events(config: &Config, size: u32) -> anyhow::Result<PgPool> {
    let url = config.database_url.expose_secret();
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(
            options
                .options([("synchronous_commit", "off")])
                .application_name(store::event_log::NO_EVENTS_APPLICATION),
        )
        .await
        .context("connecting to the database")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    store::MIGRATOR
        .run(pool)
        .await
        .context("running database migrations")
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
        let organizations = CqrsFramework::new(
            event_store(&pool),
            vec![],
            OrganizationServices {
                lookups: Box::new(lookups.clone()),
            },
        );
        let model_groups = CqrsFramework::new(
            event_store(&pool),
            vec![],
            ModelGroupServices {
                lookups: Box::new(lookups.clone()),
                catalog: Box::new(LitellmCatalog {
                    client: litellm.clone(),
                }),
            },
        );
        let teams = CqrsFramework::new(
            event_store(&pool),
            vec![],
            TeamServices {
                lookups: Box::new(lookups),
            },
        );
        let jobs = CqrsFramework::new(event_store(&pool), vec![], ());
        let key_cache = KeyCache::default();
        let commands = CommandBus::new(
            Aggregates {
                organizations,
                model_groups,
                teams,
                jobs,
            },
            pool.clone(),
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
            login_limiter: Arc::new(crate::panel::login_limit::LoginLimiter::new(
                config.admin_failures_per_minute,
            )),
            ledger,
            spend_push_token: config
                .spend_ingest
                .push_token
                .as_ref()
                .map(|token| Arc::new(AdminKey::new(token))),
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
        let mut consumers = Vec::new();
        for projector in app::consumers::all(self.seal_key) {
            let runner = ConsumerRunner::new(
                self.consumers_pool.clone(),
                projector,
                self.runner_config.clone(),
                self.state.progress.clone(),
            );
            consumers.push(
                self.background
                    .spawn(runner.run(notifier.clone(), shutdown.clone())),
            );
        }
        consumers.push(
            self.background.spawn(
                self.state
                    .team_keys
                    .cache
                    .clone()
                    .listen(self.state.pool.clone(), shutdown.clone()),
            ),
        );
        consumers.push(
            self.background.spawn(
                app::webhooks::Dispatcher::new(
                    self.background_pool.clone(),
                    self.state.vault.clone(),
                )
                .run(shutdown.clone()),
            ),
        );
        if let Some(prices) = self.state.prices.clone() {
            consumers.push(
                self.background
                    .spawn(prices.run(app::gateway::prices::REFRESH_EVERY, shutdown.clone())),
            );
        }
        if let Some(ingestor) = self.ingestor {
            consumers.push(self.background.spawn(ingestor.run(shutdown.clone())));
        }
        if let Some(reconciler) = self.reconciler {
            consumers.push(self.background.spawn(reconciler.run(shutdown.clone())));
        }
        consumers.push(self.background.spawn(expire_budget_holds(
            self.state.pool.clone(),
            shutdown.clone(),
        )));
        consumers.push(self.background.spawn(hand_back_idle_leases(
            self.state.leases.clone(),
            shutdown.clone(),
        )));
        consumers.push(self.background.spawn(purge_expired_state(
            self.state.pool.clone(),
            shutdown.clone(),
        )));
        let address = self.listener.local_addr()?;
        tracing::info!(%address, "saas-api listening");
        let app = routes::router(self.state);
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("HTTP server failed")?;
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

/// The snapshotting event store every aggregate uses.
fn event_store<A: cqrs_es::Aggregate>(
    pool: &PgPool,
) -> PersistedEventStore<store::repository::EventStore, A> {
    PersistedEventStore::new_snapshot_store(
        store::repository::EventStore::new(pool.clone()),
        SNAPSHOT_EVERY,
    )
    .with_upcasters(domain::upcast::for_cqrs())
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
