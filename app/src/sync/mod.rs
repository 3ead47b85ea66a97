//! The LiteLLM reconciler: a level-triggered controller. For each team marked dirty it computes
//! the state LiteLLM should hold from the (caught-up) read models, reads what LiteLLM has, and
//! applies only the difference. Failures back off with jitter and are retried until they
//! succeed; a periodic full pass repairs drift made by hand in LiteLLM.

pub mod marker;

use std::time::Duration;

use domain::Percent;
use domain::money::micro_floor;
use futures::StreamExt;
use litellm::{KeySpec, LitellmClient, LitellmError, TeamSpec};
use projections::progress::{self, ProgressSignal};
use projections::teams::TeamRow;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::keys::{self, Vault};

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub poll_interval: Duration,
    pub resync_every: Duration,
    pub batch: i64,
    pub lease: Duration,
    pub max_backoff: Duration,
    /// Teams of one batch reconciled at the same time.
    pub concurrency: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(200),
            resync_every: Duration::from_secs(300),
            batch: 64,
            lease: Duration::from_secs(60),
            max_backoff: Duration::from_secs(60),
            concurrency: 8,
        }
    }
}

pub struct Reconciler {
    pool: PgPool,
    vault: std::sync::Arc<Vault>,
    client: LitellmClient,
    progress: ProgressSignal,
    settings: SyncSettings,
    owner: String,
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Litellm(#[from] LitellmError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("read models are behind; will retry")]
    Behind,
    #[error("team {0} is not in the read model")]
    UnknownTeam(String),
    #[error("the team's key cannot be read: {0}")]
    Key(String),
}

/// LiteLLM takes budgets as floats; the value was computed exactly and is converted last.
fn litellm_float(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(0.0)
}

/// LiteLLM's own name for "no model": a team whose `models` is empty may call every model,
/// so a team with no model groups gets this instead (checked against the real proxy by the
/// contract suite).
pub const NO_MODELS: &str = "no-default-models";

/// The LiteLLM team our read model says should exist.
pub fn desired_team(team: &TeamRow) -> TeamSpec {
    // LiteLLM's `max_budget` counts provider cost; our credits are at the team's price.
    let cap = Percent::from_stored(team.markup_percent).provider_share(team.credits);
    let (max_budget, soft_budget) = if team.budget_mode == "hard" {
        (Some(litellm_float(cap)), None)
    } else {
        // Soft mode warns at 80 % of the credits.
        let soft = micro_floor(cap * Decimal::new(8, 1));
        (None, Some(litellm_float(soft)))
    };
    TeamSpec {
        team_id: team.team_id.clone(),
        team_alias: team.team_alias.clone(),
        models: if team.allowed_models.is_empty() {
            vec![NO_MODELS.to_owned()]
        } else {
            team.allowed_models.clone()
        },
        max_budget,
        soft_budget,
        rpm_limit: team.rpm_limit.map(|v| v as u64),
        tpm_limit: team.tpm_limit.map(|v| v as u64),
        blocked: team.status == "suspended",
    }
}

fn backoff(attempts: i32, cap: Duration) -> Duration {
    let exp = Duration::from_millis(500).saturating_mul(1u32 << attempts.clamp(0, 16) as u32);
    exp.min(cap).mul_f64(rand::random_range(0.5..=1.0))
}

impl Reconciler {
    pub fn new(
        pool: PgPool,
        vault: std::sync::Arc<Vault>,
        client: LitellmClient,
        progress: ProgressSignal,
        settings: SyncSettings,
    ) -> Self {
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            pool,
            vault,
            client,
            progress,
            settings,
            owner,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = self.progress.subscribe();
        let mut last_full_pass = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if last_full_pass.elapsed() >= self.settings.resync_every {
                last_full_pass = tokio::time::Instant::now();
                if let Err(error) = self.mark_all_for_resync().await {
                    tracing::warn!(%error, "LiteLLM full resync could not be scheduled");
                }
            }
            let worked = match self.claim().await {
                Ok(batch) => {
                    let n = batch.len();
                    // Decide on read models that hold every event committed so far (once per
                    // batch); teams are then independent, so they are reconciled concurrently.
                    let fresh = self.read_models_fresh().await;
                    let this = &self;
                    futures::stream::iter(batch)
                        .for_each_concurrent(self.settings.concurrency, |(team_id, wanted)| {
                            let fresh = &fresh;
                            async move {
                                let outcome = match fresh {
                                    Ok(()) => this.reconcile(&team_id).await,
                                    Err(_) => Err(SyncError::Behind),
                                };
                                this.record(&team_id, wanted, outcome).await;
                            }
                        })
                        .await;
                    n
                }
                Err(error) => {
                    tracing::warn!(%error, "LiteLLM sync could not claim work");
                    0
                }
            };
            if worked as i64 >= self.settings.batch {
                continue;
            }
            ticks.mark_unchanged();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.changed() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        tracing::info!("LiteLLM reconciler stopped");
    }

    async fn mark_all_for_resync(&self) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(
            "update litellm_sync s set status = 'pending', next_attempt_at = now(), updated_at = now()
              where s.status = 'in_sync'
                and exists (select 1 from teams t where t.team_id = s.team_id and t.status <> 'deleted')",
        )
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Leases due teams. The lease is committed at once: no transaction stays open while we
    /// talk to LiteLLM.
    async fn claim(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query_as(
            "update litellm_sync s set lease_owner = $1, lease_until = now() + make_interval(secs => $2)
              where s.team_id in (select team_id from litellm_sync
                                   where status <> 'in_sync' and next_attempt_at <= now()
                                     and (lease_until is null or lease_until < now())
                                   order by next_attempt_at limit $3 for update skip locked)
             returning s.team_id, s.wanted_position",
        )
        .bind(&self.owner)
        .bind(self.settings.lease.as_secs_f64())
        .bind(self.settings.batch)
        .fetch_all(&self.pool)
        .await
    }

    async fn read_models_fresh(&self) -> Result<(), SyncError> {
        let projectors: [&dyn projections::projector::Projector; 2] = [
            &projections::teams::TeamsProjector,
            &projections::model_groups::ModelGroupsProjector,
        ];
        for projector in projectors {
            if !progress::wait_caught_up(
                &self.pool,
                &self.progress,
                projector,
                Duration::from_secs(5),
            )
            .await?
            {
                return Err(SyncError::Behind);
            }
        }
        Ok(())
    }

    async fn record(&self, team_id: &str, wanted: i64, outcome: Result<(), SyncError>) {
        match outcome {
            Ok(()) => {
                let result = sqlx::query(
                    "update litellm_sync set
                        status = case when wanted_position = $2 then 'in_sync' else 'pending' end,
                        synced_position = $2, attempts = 0, last_error = null,
                        lease_owner = null, lease_until = null, updated_at = now()
                      where team_id = $1 and lease_owner = $3",
                )
                .bind(team_id)
                .bind(wanted)
                .bind(&self.owner)
                .execute(&self.pool)
                .await;
                if let Err(error) = result {
                    tracing::warn!(%error, team_id, "could not record a successful sync");
                }
                tracing::debug!(team_id, position = wanted, "team in sync with LiteLLM");
            }
            Err(error) => {
                crate::metrics::sync_failure();
                let attempts: i32 =
                    sqlx::query_scalar("select attempts from litellm_sync where team_id = $1")
                        .bind(team_id)
                        .fetch_optional(&self.pool)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                let pause = backoff(attempts, self.settings.max_backoff);
                tracing::warn!(team_id, %error, attempt = attempts + 1, retry_in_ms = pause.as_millis() as u64, "LiteLLM sync failed");
                let message: String = error.to_string().chars().take(500).collect();
                let result = sqlx::query(
                    "update litellm_sync set status = 'failing', attempts = attempts + 1, last_error = $2,
                        next_attempt_at = now() + make_interval(secs => $3),
                        lease_owner = null, lease_until = null, updated_at = now()
                      where team_id = $1 and lease_owner = $4",
                )
                .bind(team_id)
                .bind(message)
                .bind(pause.as_secs_f64())
                .bind(&self.owner)
                .execute(&self.pool)
                .await;
                if let Err(error) = result {
                    tracing::warn!(%error, team_id, "could not record a failed sync");
                }
            }
        }
    }

    /// Brings LiteLLM in line with one team; the caller made sure the read models are fresh.
    async fn reconcile(&self, team_id: &str) -> Result<(), SyncError> {
        let team = projections::teams::get(&self.pool, team_id)
            .await?
            .ok_or_else(|| SyncError::UnknownTeam(team_id.to_owned()))?;
        if team.status == "deleted" {
            // LiteLLM deletes the team's keys with it.
            self.client.team_delete(team_id).await?;
            keys::removed_from_litellm(&self.pool, team_id).await?;
            return Ok(());
        }

        let spec = desired_team(&team);
        let info = self.client.team_info(team_id).await?;
        match &info {
            None => self.client.team_new(&spec).await?,
            Some(info) if !info.matches(&spec) => self.client.team_update(&spec).await?,
            Some(_) => {}
        }

        // The current key first (a rotation's new key is live before the old one goes).
        let key = keys::reveal(&self.pool, &self.vault, &team.key_fingerprint)
            .await
            .map_err(|e| SyncError::Key(e.to_string()))?;
        let suspended = team.status == "suspended";
        // By its hash: a plaintext key in a URL would stay in LiteLLM's access log.
        let key_hash = litellm::key_hash(key.expose());
        // `/team/info` lists the team's keys: when ours is there, its state is read from the
        // listing (the common case, one call per sync instead of three).
        let blocked = match info.as_ref().and_then(|info| info.key(&key_hash)) {
            Some(listed) => Some(listed.is_blocked()),
            None => {
                // Generating an existing custom key changes nothing in LiteLLM, so this also
                // puts back a key deleted by hand; its state is then read, not assumed.
                let key_spec = KeySpec {
                    key: key.expose().to_owned().into(),
                    team_id: team_id.to_owned(),
                    fingerprint: team.key_fingerprint.clone(),
                };
                self.client.key_generate(&key_spec).await?;
                self.client
                    .key_info(&key_hash)
                    .await?
                    .map(|info| info.is_blocked())
            }
        };
        if blocked != Some(suspended) {
            self.client.key_set_blocked(&key_hash, suspended).await?;
        }

        let old_keys = keys::rotated_out(&self.pool, team_id, &team.key_fingerprint).await?;
        for (fingerprint, hash) in old_keys {
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            self.client.key_delete(&hex).await?;
            keys::key_removed_from_litellm(&self.pool, &fingerprint).await?;
        }
        Ok(())
    }
}
