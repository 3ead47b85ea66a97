//! Virtual keys: generated here, encrypted at rest, known to the event log only by fingerprint.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::team::KeyFingerprint;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// AES-256-GCM with the configured `ENCRYPTION_KEY`; the associated data binds a ciphertext to
/// the row it belongs to, so swapping ciphertexts between rows fails to decrypt.
pub struct Vault {
    cipher: Aes256Gcm,
}

#[derive(Debug, thiserror::Error)]
#[error("stored secret does not decrypt (wrong ENCRYPTION_KEY or tampered row)")]
pub struct DecryptError;

impl Vault {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    pub fn encrypt(&self, plaintext: &[u8], associated: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        (nonce.to_vec(), ciphertext)
    }

    pub fn decrypt(
        &self,
        nonce: &[u8],
        ciphertext: &[u8],
        associated: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if nonce.len() != 12 {
            return Err(DecryptError);
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| DecryptError)
    }
}

/// An `ENCRYPTION_KEY` rotation: every stored secret is decrypted with the old key and
/// encrypted with the new one. Rows already under the new key are left alone, so a rotation
/// that stopped half way can be run again.
pub struct Rotation<'a> {
    pub old: &'a Vault,
    pub new: &'a Vault,
}

/// A secret as stored: nonce and ciphertext.
pub type Sealed = (Vec<u8>, Vec<u8>);

/// What one rotation did to one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub reencrypted: u64,
    pub already_new: u64,
}

impl Rotation<'_> {
    /// The row's secret under the new key, or `None` if it is under the new key already.
    /// Neither key opening it is an error: the row is damaged or under a third key.
    pub fn reseal(
        &self,
        nonce: &[u8],
        ciphertext: &[u8],
        associated: &[u8],
    ) -> Result<Option<Sealed>, DecryptError> {
        match self.old.decrypt(nonce, ciphertext, associated) {
            Ok(plaintext) => Ok(Some(self.new.encrypt(&plaintext, associated))),
            Err(_) => self
                .new
                .decrypt(nonce, ciphertext, associated)
                .map(|_| None),
        }
    }

    /// Reseals a table's rows, each given as (its key, associated data, nonce, ciphertext):
    /// the rows to write back with their new secret, and the counts. Writing is left to the
    /// table's owner.
    pub fn reseal_all<K>(
        &self,
        rows: impl IntoIterator<Item = (K, Vec<u8>, Vec<u8>, Vec<u8>)>,
    ) -> Result<(Vec<(K, Sealed)>, Rotated), DecryptError> {
        let mut changed = Vec::new();
        let mut done = Rotated::default();
        for (key, associated, nonce, ciphertext) in rows {
            match self.reseal(&nonce, &ciphertext, &associated)? {
                Some(sealed) => {
                    changed.push((key, sealed));
                    done.reencrypted += 1;
                }
                None => done.already_new += 1,
            }
        }
        Ok((changed, done))
    }
}

/// Re-encrypts every stored virtual key (their associated data is the fingerprint).
pub async fn rotate_all(
    tx: &mut sqlx::PgConnection,
    rotation: &Rotation<'_>,
) -> Result<Rotated, RevealError> {
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("select fingerprint, nonce, ciphertext from virtual_keys for update")
            .fetch_all(&mut *tx)
            .await?;
    let (changed, done) =
        rotation.reseal_all(rows.into_iter().map(|(fingerprint, nonce, ct)| {
            let associated = fingerprint.clone().into_bytes();
            (fingerprint, associated, nonce, ct)
        }))?;
    for (fingerprint, (nonce, ciphertext)) in changed {
        sqlx::query("update virtual_keys set nonce = $2, ciphertext = $3 where fingerprint = $1")
            .bind(&fingerprint)
            .bind(nonce)
            .bind(ciphertext)
            .execute(&mut *tx)
            .await?;
    }
    Ok(done)
}

/// A team's virtual key. Debug and Display never show it.
#[derive(Clone)]
pub struct VirtualKey(SecretString);

impl VirtualKey {
    /// `sk-` + 32 bytes from the thread-local CSPRNG (ChaCha, seeded from the OS).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("sk-{}", URL_SAFE_NO_PAD.encode(bytes)).into())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.expose().as_bytes()).into()
    }

    pub fn fingerprint(&self) -> KeyFingerprint {
        let hash = self.hash();
        KeyFingerprint::new(hash[..8].iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl fmt::Debug for VirtualKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtualKey(fp={})", self.fingerprint().as_str())
    }
}

/// Stores a freshly generated key for `team_id`. Stored before the command that announces
/// its fingerprint; a key whose command then fails is never referenced, hence never usable.
pub async fn store(
    pool: &PgPool,
    vault: &Vault,
    team_id: &str,
    key: &VirtualKey,
) -> Result<(), sqlx::Error> {
    let fingerprint = key.fingerprint();
    let (nonce, ciphertext) =
        vault.encrypt(key.expose().as_bytes(), fingerprint.as_str().as_bytes());
    sqlx::query(
        "insert into virtual_keys (fingerprint, team_id, key_hash, nonce, ciphertext) values ($1, $2, $3, $4, $5)",
    )
    .bind(fingerprint.as_str())
    .bind(team_id)
    .bind(key.hash().as_slice())
    .bind(nonce)
    .bind(ciphertext)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets a key whose command failed.
pub async fn discard(pool: &PgPool, key: &VirtualKey) {
    if let Err(error) = sqlx::query("delete from virtual_keys where fingerprint = $1")
        .bind(key.fingerprint().as_str())
        .execute(pool)
        .await
    {
        tracing::warn!(%error, fingerprint = key.fingerprint().as_str(), "could not discard an unused key");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    #[error("no stored key has this fingerprint")]
    Missing,
}

pub async fn reveal(
    pool: &PgPool,
    vault: &Vault,
    fingerprint: &str,
) -> Result<VirtualKey, RevealError> {
    let row: Option<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("select nonce, ciphertext from virtual_keys where fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(pool)
            .await?;
    let (nonce, ciphertext) = row.ok_or(RevealError::Missing)?;
    let plaintext = vault.decrypt(&nonce, &ciphertext, fingerprint.as_bytes())?;
    let text = String::from_utf8(plaintext).map_err(|_| DecryptError)?;
    Ok(VirtualKey(text.into()))
}

/// The SHA-256 hash (hex) of the key with this fingerprint: how LiteLLM names it.
pub async fn hash_hex(pool: &PgPool, fingerprint: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select encode(key_hash, 'hex') from virtual_keys where fingerprint = $1")
        .bind(fingerprint)
        .fetch_optional(pool)
        .await
}

/// A team's keys that are no longer its current one and that LiteLLM may still hold:
/// (fingerprint, SHA-256 hash).
pub async fn rotated_out(
    pool: &PgPool,
    team_id: &str,
    current_fingerprint: &str,
) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "select fingerprint, key_hash from virtual_keys
          where team_id = $1 and fingerprint <> $2 and litellm_removed_at is null",
    )
    .bind(team_id)
    .bind(current_fingerprint)
    .fetch_all(pool)
    .await
}

/// Remembers that LiteLLM no longer holds this key (deleted there after a rotation).
pub async fn key_removed_from_litellm(pool: &PgPool, fingerprint: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update virtual_keys set litellm_removed_at = now() where fingerprint = $1")
        .bind(fingerprint)
        .execute(pool)
        .await?;
    Ok(())
}

/// Remembers that LiteLLM holds none of the team's keys (the team was deleted there).
pub async fn removed_from_litellm(pool: &PgPool, team_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update virtual_keys set litellm_removed_at = now()
          where team_id = $1 and litellm_removed_at is null",
    )
    .bind(team_id)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_never_printed() {
        let a = VirtualKey::generate();
        let b = VirtualKey::generate();
        assert!(a.expose().starts_with("sk-"));
        assert_eq!(a.expose().len(), 3 + 43);
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(a.fingerprint().as_str().len(), 16);
    }

    #[test]
    fn ciphertexts_round_trip_and_are_bound_to_their_row() {
        let vault = Vault::new([7u8; 32]);
        let (nonce, ct) = vault.encrypt(b"sk-secret", b"fp1");
        assert_eq!(vault.decrypt(&nonce, &ct, b"fp1").unwrap(), b"sk-secret");
        assert!(vault.decrypt(&nonce, &ct, b"fp2").is_err());
        assert!(Vault::new([8u8; 32]).decrypt(&nonce, &ct, b"fp1").is_err());
    }
}
