//! Team use cases that are more than one command. Creating a team: its virtual key is generated
//! here, stored encrypted before the event that announces its fingerprint, and discarded if that
//! command fails, so no event names a key that was not kept and no kept key outlives a refusal.
//! Rotating a key: the new key is stored before the event and discarded if the command fails.
//! Revealing a key: the reveal is recorded first, so there is no reveal without its audit record.

use domain::CommandMetadata;
use domain::team::{KeyFingerprint, NewTeam, Team, TeamCommand, TeamId};
use sqlx::PgPool;

use crate::commands::{CommandBus, OnConflict};
use crate::error::{AppError, AppResult};
use crate::keys::{self, Vault, VirtualKey};

/// A created team, with its key (shown this once) and the models its groups allow.
pub struct CreatedTeam {
    pub team: NewTeam,
    pub key: VirtualKey,
    pub position: i64,
    pub allowed_models: Vec<String>,
}

/// Stores `key` for the team, then runs `command`, whose event announces the key's fingerprint
/// (not retried on a conflict); the key is discarded if the command fails.
async fn announce_key(
    bus: &CommandBus,
    vault: &Vault,
    pool: &PgPool,
    team_id: &TeamId,
    key: &VirtualKey,
    command: TeamCommand,
    metadata: &CommandMetadata,
) -> AppResult<i64> {
    keys::store(pool, vault, team_id.as_str(), key).await?;
    let outcome = bus
        .execute::<Team>(team_id.as_str(), command, metadata, OnConflict::Fail)
        .await;
    if outcome.is_err() {
        keys::discard(pool, key).await;
    }
    outcome
}

/// Creates the team `build` describes, given the fingerprint of its new key.
pub async fn create(
    bus: &CommandBus,
    vault: &Vault,
    pool: &PgPool,
    build: impl FnOnce(KeyFingerprint) -> NewTeam,
    metadata: &CommandMetadata,
) -> AppResult<CreatedTeam> {
    let key = VirtualKey::generate();
    let team = build(key.fingerprint());
    let command = TeamCommand::Create(Box::new(team.clone()));
    let position = announce_key(bus, vault, pool, &team.team_id, &key, command, metadata).await?;
    let groups: Vec<String> = team
        .model_groups
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    let allowed_models = projections::model_groups::models_of(pool, &groups).await?;
    tracing::info!(
        team_id = team.team_id.as_str(),
        key_fingerprint = team.key_fingerprint.as_str(),
        position,
        "team created"
    );
    Ok(CreatedTeam {
        team,
        key,
        position,
        allowed_models,
    })
}

/// A revealed key and the position of the event that recorded its reveal.
pub struct RevealedKey {
    pub key: VirtualKey,
    pub fingerprint: String,
    pub position: i64,
}

/// Records the reveal of the team's current key, then decrypts that key.
pub async fn reveal_key(
    bus: &CommandBus,
    vault: &Vault,
    pool: &PgPool,
    team_id: &TeamId,
    metadata: &CommandMetadata,
) -> AppResult<RevealedKey> {
    let position = bus
        .execute::<Team>(
            team_id.as_str(),
            TeamCommand::RecordKeyRevealed,
            metadata,
            OnConflict::Retry,
        )
        .await?;
    let payload =
        store::event_log::newest_payload(pool, "Team", team_id.as_str(), "VirtualKeyRevealed")
            .await?;
    let fingerprint = payload
        .as_ref()
        .and_then(|p| p["key_fingerprint"].as_str())
        .ok_or_else(|| AppError::internal("reveal event missing for team"))?
        .to_owned();
    let key = keys::reveal(pool, vault, &fingerprint)
        .await
        .map_err(AppError::internal)?;
    tracing::info!(team_id = team_id.as_str(), key_fingerprint = %fingerprint, "virtual key revealed");
    Ok(RevealedKey {
        key,
        fingerprint,
        position,
    })
}

/// A team's new key and the position of the rotation.
pub struct RotatedKey {
    pub key: VirtualKey,
    pub position: i64,
}

/// Gives the team a new key; the old one stops working. Not retried on a conflict: a
/// concurrent rotation should be seen by the admin.
pub async fn rotate_key(
    bus: &CommandBus,
    vault: &Vault,
    pool: &PgPool,
    team_id: &TeamId,
    metadata: &CommandMetadata,
) -> AppResult<RotatedKey> {
    let key = VirtualKey::generate();
    let command = TeamCommand::RotateKey {
        new_fingerprint: key.fingerprint(),
    };
    let position = announce_key(bus, vault, pool, team_id, &key, command, metadata).await?;
    Ok(RotatedKey { key, position })
}
