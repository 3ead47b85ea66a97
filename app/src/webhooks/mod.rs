//! Threshold-alert webhooks: a URL per organization with a signing secret we generate (shown
//! once, stored encrypted), and the dispatcher that drains the delivery outbox with retries.
//!
//! Each delivery is a POST of the JSON payload with
//! `X-Saas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` and
//! `X-Saas-Delivery: <delivery id>` (stable across retries, so receivers can deduplicate).
//! Only a 2xx counts as delivered; failures back off exponentially (0.5 s doubling, at most an
//! hour) for up to `MAX_ATTEMPTS`, then the delivery is `dead`.

pub mod alerts;
pub mod destination;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::keys::Vault;

pub const MAX_ATTEMPTS: i32 = 12;

/// A new signing secret: `whsec_` + 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The signature header value for `body` at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// The secret is bound to its organization (AES-GCM associated data).
fn aad(organization_id: &str) -> Vec<u8> {
    format!("webhook:{organization_id}").into_bytes()
}

/// Re-encrypts every webhook signing secret under the new `ENCRYPTION_KEY`.
pub async fn rotate_all(
    tx: &mut sqlx::PgConnection,
    rotation: &crate::keys::Rotation<'_>,
) -> Result<crate::keys::Rotated, crate::keys::RevealError> {
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "select organization_id, nonce, secret from organization_webhooks for update",
    )
    .fetch_all(&mut *tx)
    .await?;
    let (changed, done) =
        rotation.reseal_all(rows.into_iter().map(|(organization_id, nonce, secret)| {
            let associated = aad(&organization_id);
            (organization_id, associated, nonce, secret)
        }))?;
    for (organization_id, (nonce, secret)) in changed {
        sqlx::query(
            "update organization_webhooks set nonce = $2, secret = $3 where organization_id = $1",
        )
        .bind(&organization_id)
        .bind(nonce)
        .bind(secret)
        .execute(&mut *tx)
        .await?;
    }
    Ok(done)
}

pub async fn save(
    pool: &PgPool,
    vault: &Vault,
    organization_id: &str,
    url: &str,
    secret: &str,
) -> Result<(), sqlx::Error> {
    let (nonce, ciphertext) = vault.encrypt(secret.as_bytes(), &aad(organization_id));
    sqlx::query(
        "insert into organization_webhooks (organization_id, url, nonce, secret) values ($1, $2, $3, $4)
         on conflict (organization_id) do update set url = excluded.url, nonce = excluded.nonce,
             secret = excluded.secret, updated_at = now()",
    )
    .bind(organization_id)
    .bind(url)
    .bind(nonce)
    .bind(ciphertext)
    .execute(pool)
    .await?;
    Ok(())
}

/// An organization's webhook URL and when it was last set (never its secret).
pub async fn current(
    pool: &PgPool,
    organization_id: &str,
) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
    sqlx::query_as("select url, updated_at from organization_webhooks where organization_id = $1")
        .bind(organization_id)
        .fetch_optional(pool)
        .await
}

/// Removes an organization's webhook; false if it had none.
pub async fn remove(pool: &PgPool, organization_id: &str) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("delete from organization_webhooks where organization_id = $1")
        .bind(organization_id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(removed > 0)
}

#[derive(Debug, sqlx::FromRow)]
struct Due {
    delivery_id: String,
    organization_id: String,
    payload: serde_json::Value,
    attempts: i32,
    url: Option<String>,
    nonce: Option<Vec<u8>>,
    secret: Option<Vec<u8>>,
}

pub struct Dispatcher {
    pool: PgPool,
    vault: Arc<Vault>,
    http: reqwest::Client,
    poll: Duration,
    allow_private: bool,
}

impl Dispatcher {
    /// `allow_private` lets deliveries reach loopback and private addresses (development).
    pub fn new(pool: PgPool, vault: Arc<Vault>, allow_private: bool) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none());
        if !allow_private {
            builder = builder.dns_resolver(destination::PublicOnly);
        }
        // Failing to build is failing closed: the default client has the same limits missing,
        // so refuse to deliver rather than deliver unchecked.
        let http = builder.build().expect("the webhook HTTP client builds");
        Self {
            pool,
            vault,
            http,
            poll: Duration::from_millis(250),
            allow_private,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let sent = match self.dispatch_due().await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "webhook dispatch failed; retrying");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Leases due deliveries (no transaction stays open while sending) and sends them.
    async fn dispatch_due(&self) -> Result<usize, sqlx::Error> {
        let due: Vec<Due> = sqlx::query_as(
            "with due as (
                 update webhook_deliveries set lease_until = now() + interval '60 seconds'
                  where delivery_id in (
                        select delivery_id from webhook_deliveries
                         where status = 'pending' and next_attempt_at <= now()
                           and (lease_until is null or lease_until < now())
                         order by next_attempt_at limit 16 for update skip locked)
              returning delivery_id, organization_id, payload, attempts)
             select d.delivery_id, d.organization_id, d.payload, d.attempts, w.url, w.nonce, w.secret
               from due d left join organization_webhooks w using (organization_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        let n = due.len();
        futures::future::join_all(due.into_iter().map(|d| self.deliver(d))).await;
        Ok(n)
    }

    async fn deliver(&self, due: Due) {
        let outcome = self.send(&due).await;
        let result = match outcome {
            Ok(status) => {
                sqlx::query(
                    "update webhook_deliveries set status = 'delivered', attempts = attempts + 1,
                         last_status = $2, last_error = null, delivered_at = now(), lease_until = null
                      where delivery_id = $1",
                )
                .bind(&due.delivery_id)
                .bind(i32::from(status))
                .execute(&self.pool)
                .await
            }
            Err((status, error)) => {
                let attempts = due.attempts + 1;
                let backoff_ms = 500f64 * 2f64.powi(attempts.min(13) - 1);
                let backoff_ms = backoff_ms.min(3_600_000.0);
                sqlx::query(
                    "update webhook_deliveries
                        set attempts = $2, last_status = $3, last_error = $4, lease_until = null,
                            status = case when $2 >= $5 then 'dead' else 'pending' end,
                            next_attempt_at = now() + $6 * interval '1 millisecond'
                      where delivery_id = $1",
                )
                .bind(&due.delivery_id)
                .bind(attempts)
                .bind(status.map(i32::from))
                .bind(error.chars().take(500).collect::<String>())
                .bind(MAX_ATTEMPTS)
                .bind(backoff_ms)
                .execute(&self.pool)
                .await
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, delivery = %due.delivery_id, "could not record a webhook delivery; it is retried after its lease");
        }
    }

    async fn send(&self, due: &Due) -> Result<u16, (Option<u16>, String)> {
        let (Some(url), Some(nonce), Some(secret)) = (&due.url, &due.nonce, &due.secret) else {
            return Err((None, "the organization has no webhook any more".into()));
        };
        let secret = self
            .vault
            .decrypt(nonce, secret, &aad(&due.organization_id))
            .map_err(|_| (None, "the webhook secret cannot be decrypted".to_owned()))?;
        let secret = String::from_utf8(secret).map_err(|_| (None, "bad secret".to_owned()))?;
        if !self.allow_private {
            // Names are checked by the resolver; an address in the URL itself is checked here.
            let literal = reqwest::Url::parse(url)
                .ok()
                .and_then(|u| destination::literal_address(&u));
            if let Some(address) = literal.filter(|a| !destination::is_public(*a)) {
                return Err((None, format!("refused: {address} is not a public address")));
            }
        }
        let body = serde_json::to_vec(&due.payload).map_err(|e| (None, e.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-saas-signature", signature(&secret, timestamp, &body))
            .header("x-saas-delivery", &due.delivery_id)
            .body(body)
            .send()
            .await
            // `{:#}` adds the causes, where reqwest puts the reason (such as a refused address).
            .map_err(|e| (None, format!("{:#}", anyhow::Error::new(e.without_url()))))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(status)
        } else {
            Err((Some(status), format!("the receiver answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_depend_on_secret_time_and_body() {
        let a = signature("whsec_a", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("whsec_b", 1_700_000_000, b"{}"));
        assert_ne!(a, signature("whsec_a", 1_700_000_001, b"{}"));
        assert_ne!(a, signature("whsec_a", 1_700_000_000, b"[]"));
        assert_eq!(a, signature("whsec_a", 1_700_000_000, b"{}"));
    }
}
