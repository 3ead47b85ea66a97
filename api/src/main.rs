//! The `saas-api` binary: serve (default), migrate, replay, verify, admin, openapi, healthcheck.

use std::io::Write;

use anyhow::Context;
use api::config::{Config, DatabaseOnly, dev_keys_path};
use api::dev_keys::DevKeys;
use api::startup::{self, Application};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

/// saas-api: sell LLM access through LiteLLM, with an event-sourced ledger.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if needed, migrate, and serve HTTP and the consumers (default).
    Serve,
    /// Create the database if needed and run migrations, then exit.
    Migrate,
    /// Rebuild read models from position zero into fresh tables and swap them in atomically,
    /// while a running service keeps answering.
    Replay {
        /// One read model (organizations, model_groups, teams, usage, budgets, jobs); all if absent.
        #[arg(long)]
        projection: Option<String>,
    },
    /// Rebuild read models aside and compare them with the live ones; exit code 1 on any
    /// difference. With --chain, check the event log's hash chain and seals instead.
    Verify {
        #[arg(long)]
        projection: Option<String>,
        #[arg(long)]
        chain: bool,
    },
    /// Re-encrypt every stored secret (virtual keys, webhook secrets, stored idempotent
    /// answers) from ENCRYPTION_KEY_OLD to ENCRYPTION_KEY, in one transaction. Stop the
    /// service first; keys are read from the environment, never from the command line.
    RotateEncryptionKey,
    /// Call the admin API of a running service (for scripts): orgs, groups, teams, usage.
    Admin(Box<api::admin_cli::AdminArgs>),
    /// Print the OpenAPI 3.1 document of every route (the one served at /openapi.json).
    Openapi,
    /// Exit 0 if the service on this machine answers /health (the container's health check).
    Healthcheck {
        #[arg(long, env = "PORT", default_value_t = 8003)]
        port: u16,
    },
}

/// Connections `replay` and `verify` open (the service's default pool size: a comparison holds
/// several at once).
const MAINTENANCE_POOL: u32 = 20;

/// A command that fails says why in one line (the causes joined), never with a backtrace.
fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::from(error)),
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> std::process::ExitCode {
    let text = format!("{error:#}").replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "error: {text}");
    std::process::ExitCode::FAILURE
}

async fn run() -> anyhow::Result<()> {
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    // Client commands: no server configuration needed.
    let command = match command {
        Command::Admin(args) => {
            if let Err(error) = api::admin_cli::run(*args).await {
                let _ = writeln!(std::io::stderr(), "error: {error:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Openapi => {
            let document = api::routes::openapi().to_pretty_json()?;
            writeln!(std::io::stdout(), "{document}")?;
            return Ok(());
        }
        Command::Healthcheck { port } => {
            let healthy = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/health"))
                .timeout(std::time::Duration::from_secs(3))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            std::process::exit(if healthy { 0 } else { 1 });
        }
        // Rebuilds and comparisons read the log: the database is all they need.
        Command::Replay { projection } => {
            let config = DatabaseOnly::from_env().context("invalid configuration")?;
            let pool = database_only(&config).await?;
            return api::maintenance::replay(&pool, projection.as_deref()).await;
        }
        Command::Verify { projection, chain } => {
            let config = DatabaseOnly::from_env().context("invalid configuration")?;
            // The seals need the key they were made with; checked before any work.
            let seal_key = chain
                .then(|| config.seal_key().context("verify --chain"))
                .transpose()?;
            let pool = database_only(&config).await?;
            let sound = match seal_key {
                Some(key) => api::maintenance::verify_chain(&pool, key).await?,
                None => api::maintenance::verify(&pool, projection.as_deref())
                    .await?
                    .is_empty(),
            };
            if !sound {
                std::process::exit(1);
            }
            tracing::info!("verified: no difference found");
            return Ok(());
        }
        other => other,
    };
    let (config, new_dev_keys) = Config::from_env().context("invalid configuration")?;
    api::telemetry::init(config.log_format);
    if config.dev_mode {
        tracing::warn!(
            keys_file = %dev_keys_path().display(),
            litellm = config.litellm_master_key.is_some(),
            "DEV MODE: using the local database and dev keys. Never use this in production."
        );
    }
    if let Some(keys) = new_dev_keys {
        show_dev_keys_once(&keys)?;
    }
    match command {
        Command::Migrate => {
            let pool = startup::connect(&config).await?;
            startup::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Command::Admin(_)
        | Command::Openapi
        | Command::Healthcheck { .. }
        | Command::Replay { .. }
        | Command::Verify { .. } => {
            unreachable!("handled before configuration")
        }
        Command::RotateEncryptionKey => {
            let old = api::config::old_encryption_key()?
                .context("set ENCRYPTION_KEY_OLD to the key being replaced")?;
            let pool = startup::connect(&config).await?;
            startup::migrate(&pool).await?;
            api::maintenance::rotate_encryption_key(&pool, old, config.encryption_key_bytes())
                .await?;
        }
        Command::Serve => {
            let background =
                startup::background_runtime(config.background_threads, config.background_nice)?;
            let handle = background
                .as_ref()
                .map_or_else(tokio::runtime::Handle::current, |r| r.handle().clone());
            let app = Application::build_on(config, handle).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(startup::shutdown_on_signal(shutdown.clone()));
            app.run_until_stopped(shutdown).await?;
            // Its tasks have finished; nothing is left to wait for.
            if let Some(background) = background {
                background.shutdown_background();
            }
        }
    }
    Ok(())
}

/// The pool of a command that needs only `DATABASE_URL`, migrated, with logging set up.
async fn database_only(config: &DatabaseOnly) -> anyhow::Result<sqlx::PgPool> {
    api::telemetry::init(config.log_format);
    let pool = startup::connect_url(config.database_url.expose_secret(), MAINTENANCE_POOL).await?;
    startup::migrate(&pool).await?;
    Ok(pool)
}

/// Dev keys are shown on the terminal once, when generated, and never logged: log lines are
/// shipped and kept, this banner is not.
fn show_dev_keys_once(keys: &DevKeys) -> anyhow::Result<()> {
    let mut out = std::io::stderr().lock();
    writeln!(
        out,
        "\n  saas-api dev mode generated these keys (saved in {}):\n    MASTER_KEY={}\n    ENCRYPTION_KEY={}\n  Use the master key as the X-Admin-Key header. They are not shown again.\n",
        dev_keys_path().display(),
        keys.master_key.expose_secret(),
        keys.encryption_key.expose_secret()
    )?;
    Ok(())
}
