//! Resolving a virtual key to its team for the request path, by the key's SHA-256 (never by
//! comparing plaintexts), cached per process. Every team event is announced on
//! `saas_team_changed` at commit; each process then drops that team's cached keys and, until its
//! teams read model has applied that event, looks the team up afresh instead of caching it. A
//! rotated-out, suspended or deleted key is refused from the next request on.

use crate::error::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::Percent;
use domain::team::BudgetMode;
use projections::progress::ProgressSignal;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::error::{AppError, AppResult, ErrorKind};

const CHANNEL: &str = "saas_team_changed";

/// The team behind a request's virtual key.
#[derive(Clone)]
pub struct TeamCaller {
    pub team_id: String,
    pub organization_id: String,
    pub key_fingerprint: String,
    /// The caller's key, forwarded to LiteLLM as is.
    pub key: SecretString,
    /// The team's live models, budget mode and markup, cached with the key.
    pub allowed_models: Vec<String>,
    pub budget_mode: BudgetMode,
    pub markup: Percent,
}

impl std::fmt::Debug for TeamCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamCaller")
            .field("team_id", &self.team_id)
            .field("key_fingerprint", &self.key_fingerprint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct KeyRow {
    team_id: String,
    organization_id: String,
    fingerprint: String,
    current_fingerprint: String,
    status: String,
    allowed_models: Vec<String>,
    budget_mode: String,
    markup_percent: rust_decimal::Decimal,
}

#[derive(Default)]
struct Inner {
    /// Key hash -> the row it resolved to (only keys of active teams).
    keys: HashMap<[u8; 32], KeyRow>,
    /// Teams changed by an event the teams read model may not hold yet: the event's position.
    pending: HashMap<String, i64>,
    /// Bumped by every invalidation, so a lookup that raced one does not cache what it read.
    epoch: u64,
}

#[derive(Clone, Default)]
pub struct KeyCache {
    inner: Arc<Mutex<Inner>>,
}

/// What a `saas_team_changed` notification says changed.
#[derive(Debug, PartialEq, Eq)]
pub enum TeamChange {
    /// One team, by an event at this position.
    Team { team_id: String, position: i64 },
    /// A model group: any team's allowed models may have changed.
    Groups,
    /// A payload this version cannot read (a newer writer): treat it as anything.
    Unreadable,
}

impl TeamChange {
    /// `team <position> <id>` or `groups <position>` (see the migration that writes them).
    pub fn parse(payload: &str) -> Self {
        let mut parts = payload.splitn(3, ' ');
        match (
            parts.next(),
            parts.next().map(str::parse::<i64>),
            parts.next(),
        ) {
            (Some("team"), Some(Ok(position)), Some(team_id)) if !team_id.is_empty() => {
                Self::Team {
                    team_id: team_id.to_owned(),
                    position,
                }
            }
            (Some("groups"), Some(Ok(_)), None) => Self::Groups,
            _ => Self::Unreadable,
        }
    }
}

impl KeyCache {
    /// Applies one notification.
    pub fn changed(&self, change: TeamChange) {
        match change {
            TeamChange::Team { team_id, position } => self.invalidate(&team_id, position),
            TeamChange::Groups | TeamChange::Unreadable => self.flush(),
        }
    }

    pub fn invalidate(&self, team_id: &str, position: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.keys.retain(|_, row| row.team_id != team_id);
        let pending = inner.pending.entry(team_id.to_owned()).or_insert(position);
        *pending = (*pending).max(position);
        inner.epoch += 1;
    }

    fn flush(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.keys.clear();
        inner.epoch += 1;
    }

    /// Listens for team changes until `shutdown`.
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) {
        let mut listener = loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => break listener,
                    Err(error) => tracing::warn!(%error, "cannot listen for team changes"),
                },
                Err(error) => tracing::warn!(%error, "cannot listen for team changes"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = listener.try_recv() => match received {
                    Ok(Some(note)) => self.changed(TeamChange::parse(note.payload())),
                    // The connection dropped (and is being re-made): anything may have been missed.
                    Ok(None) => self.flush(),
                    Err(error) => {
                        tracing::warn!(%error, "team change listener failed; cache flushed");
                        self.flush();
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    }
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(ErrorKind::Unauthorized, ErrorCode::Unauthorized, message)
}

/// Key resolution with its cache and the read model it waits on.
#[derive(Clone)]
pub struct TeamKeys {
    pub pool: PgPool,
    pub progress: ProgressSignal,
    pub read_wait_timeout: Duration,
    pub cache: KeyCache,
}

impl TeamKeys {
    /// Resolves a virtual key to its team, or says precisely why it cannot be used.
    pub async fn resolve(&self, key: &str) -> AppResult<TeamCaller> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let cached = {
            let inner = self.cache.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.keys.get(&hash).cloned()
        };
        let row = match cached {
            Some(row) => row,
            None => self.load_key(&hash).await?,
        };
        if row.fingerprint != row.current_fingerprint {
            return Err(unauthorized(
                "this virtual key was rotated out; use the team's current key",
            ));
        }
        match row.status.as_str() {
            "active" => {}
            "suspended" => return Err(unauthorized("the team of this virtual key is suspended")),
            _ => return Err(unauthorized("the team of this virtual key was deleted")),
        }
        Ok(TeamCaller {
            team_id: row.team_id,
            organization_id: row.organization_id,
            key_fingerprint: row.fingerprint,
            key: key.to_owned().into(),
            allowed_models: row.allowed_models,
            budget_mode: BudgetMode::from_stored(&row.budget_mode),
            markup: Percent::from_stored(row.markup_percent),
        })
    }

    async fn load_key(&self, hash: &[u8; 32]) -> AppResult<KeyRow> {
        let team: Option<String> =
            sqlx::query_scalar("select team_id from virtual_keys where key_hash = $1")
                .bind(hash.as_slice())
                .fetch_optional(&self.pool)
                .await?;
        let Some(team) = team else {
            return Err(unauthorized("unknown virtual key"));
        };
        let (pending, epoch) = {
            let inner = self.cache.inner.lock().unwrap_or_else(|e| e.into_inner());
            (inner.pending.get(&team).copied(), inner.epoch)
        };
        // A change to this team was announced: read it only once the read model holds it.
        let mut settled = pending.is_none();
        if let Some(position) = pending {
            let projected = projections::progress::wait_for(
                &self.pool,
                &self.progress,
                projections::teams::PROJECTOR,
                position,
                self.read_wait_timeout,
            )
            .await?;
            settled = projected == projections::progress::Projected::Yes;
            if !settled {
                return Err(AppError::unavailable(
                    ErrorCode::ProjectionLag,
                    "the team changed a moment ago and is not readable yet; retry",
                    1,
                ));
            }
        }
        let row: Option<KeyRow> = sqlx::query_as(concat!(
            "select k.team_id, t.organization_id, k.fingerprint,
                    t.key_fingerprint as current_fingerprint, t.status, t.budget_mode, t.markup_percent, ",
            projections::live_models_of!("t.model_groups"),
            " as allowed_models
               from virtual_keys k join teams t on t.team_id = k.team_id
              where k.key_hash = $1",
        ))
        .bind(hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(unauthorized("unknown virtual key"));
        };
        let mut inner = self.cache.inner.lock().unwrap_or_else(|e| e.into_inner());
        if settled && pending.is_some() && inner.pending.get(&team) == pending.as_ref() {
            inner.pending.remove(&team);
        }
        if inner.epoch == epoch
            && !inner.pending.contains_key(&team)
            && row.status == "active"
            && row.fingerprint == row.current_fingerprint
        {
            inner.keys.insert(*hash, row.clone());
        }
        Ok(row)
    }
}

impl TeamCaller {
    pub fn expose_key(&self) -> &str {
        self.key.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_named_like_the_groups_signal_is_still_one_team() {
        for team_id in ["ModelGroup", "groups", "team"] {
            let change = TeamChange::parse(&format!("team 42 {team_id}"));
            assert_eq!(
                change,
                TeamChange::Team {
                    team_id: team_id.to_owned(),
                    position: 42
                }
            );
            let cache = KeyCache::default();
            cache.changed(change);
            // Its lookups wait for the read model to reach the event (a flush would not).
            let inner = cache.inner.lock().unwrap();
            assert_eq!(inner.pending.get(team_id), Some(&42));
        }
        assert_eq!(TeamChange::parse("groups 7"), TeamChange::Groups);
        assert_eq!(TeamChange::parse("ModelGroup 7"), TeamChange::Unreadable);
    }
}
