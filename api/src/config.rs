//! Configuration from the environment, with an explicit dev mode when nothing is configured.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

use crate::dev_keys::{self, DevKeys};

pub const DEFAULT_PORT: u16 = 8003;
pub const DEV_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/saas_litellm";
pub const DEV_LITELLM_URL: &str = "http://127.0.0.1:4000";

/// The deployment's variables; any one of them set means "configured", i.e. not dev mode.
/// (`PORT`, `HOST` and `LOG_FORMAT` are read in both modes.)
pub const CONFIG_VARS: [&str; 5] = [
    "DATABASE_URL",
    "MASTER_KEY",
    "LITELLM_PROXY_URL",
    "LITELLM_MASTER_KEY",
    "ENCRYPTION_KEY",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub master_key: SecretString,
    pub encryption_key: SecretString,
    pub host: IpAddr,
    pub port: u16,
    pub litellm_proxy_url: String,
    pub litellm_master_key: Option<SecretString>,
    pub log_format: LogFormat,
    pub db_pool_size: u32,
    /// How long a query waits for a requested position to be projected.
    pub read_wait_timeout: Duration,
    /// How often every team is compared with LiteLLM again, to repair drift.
    pub litellm_resync_every: Duration,
    pub spend_ingest: SpendIngestConfig,
    /// Wrong master keys (login form or `X-Admin-Key`) one client address may present per
    /// minute before it must wait for the minute's end.
    pub admin_failures_per_minute: u32,
    /// Threads of the runtime for consumers and background work; 0 shares the request runtime.
    pub background_threads: usize,
    /// Nice value of those threads (Linux, per thread): how readily they yield the CPU to the
    /// request threads. Higher favours request latency, lower favours read-model lag.
    pub background_nice: i32,
    /// Hard mode refuses while LiteLLM's prices are older than this (they are read every
    /// minute in the background).
    pub prices_max_age: Duration,
    /// How long a stream that ended without usage waits for LiteLLM's own spend row before
    /// its estimate is recorded.
    pub estimate_grace: Duration,
    /// What the HTTP edge enforces: timeouts, trusted proxies, the metrics token, webhooks.
    pub edge: EdgeConfig,
    pub dev_mode: bool,
}

/// The HTTP edge's protections, each configurable with a safe default.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`: addresses or CIDRs).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A client must send a request's headers within this (`HTTP_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// ...and its body within this (`HTTP_BODY_TIMEOUT_SECS`). The header deadline also
    /// closes a kept-alive connection that sends no next request within it.
    pub body_timeout: Duration,
    /// Bearer token `/metrics` requires (`METRICS_TOKEN`); open without it.
    pub metrics_token: Option<SecretString>,
    /// Webhooks may target loopback, private and link-local addresses
    /// (`WEBHOOK_ALLOW_PRIVATE_ADDRESSES`; on in dev mode only).
    pub allow_private_webhooks: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            metrics_token: None,
            allow_private_webhooks: false,
        }
    }
}

impl EdgeConfig {
    fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        dev_mode: bool,
    ) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let secs = |name: &'static str, default: Duration| {
            let value = parse_number(get(name), name, default.as_secs())?;
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1 second".into(),
                });
            }
            Ok(Duration::from_secs(value))
        };
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|entry| {
                        entry
                            .parse::<ipnet::IpNet>()
                            .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| ConfigError::Invalid {
                                name: "TRUSTED_PROXIES",
                                reason: format!("not an address or CIDR: {entry:?}"),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let metrics_token = get("METRICS_TOKEN");
        if let Some(token) = &metrics_token
            && is_placeholder(token)
        {
            return Err(ConfigError::Invalid {
                name: "METRICS_TOKEN",
                reason: "looks like a placeholder or is shorter than 16 characters".into(),
            });
        }
        let allow_private_webhooks = match get("WEBHOOK_ALLOW_PRIVATE_ADDRESSES").as_deref() {
            None => dev_mode,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
                    reason: format!("expected true or false, got {other:?}"),
                });
            }
        };
        Ok(Self {
            trusted_proxies,
            header_timeout: secs("HTTP_HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
            body_timeout: secs("HTTP_BODY_TIMEOUT_SECS", defaults.body_timeout)?,
            metrics_token: metrics_token.map(SecretString::from),
            allow_private_webhooks,
        })
    }
}

/// Spend ingestion from LiteLLM (`/spend/logs/v2` polling and the `generic_api` push).
#[derive(Debug, Clone)]
pub struct SpendIngestConfig {
    /// Pause between polls; zero turns polling off.
    pub poll_every: Duration,
    /// How far back each poll re-reads, for rows LiteLLM writes late (it batches every 10 s).
    pub overlap: Duration,
    /// Where the very first poll starts.
    pub lookback: Duration,
    /// How far back a periodic sweep re-reads: the longest request LiteLLM can run plus its
    /// write delay, since a row is filed under the request's start (LiteLLM's default
    /// `request_timeout` is 6000 s).
    pub long_overlap: Duration,
    /// How often that sweep runs.
    pub long_sweep_every: Duration,
    /// Bearer token LiteLLM's `generic_api` callback must send; push is off without it.
    pub push_token: Option<SecretString>,
}

impl Default for SpendIngestConfig {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_secs(10),
            overlap: Duration::from_secs(120),
            lookback: Duration::from_secs(7 * 24 * 3600),
            long_overlap: Duration::from_secs(6060),
            long_sweep_every: Duration::from_secs(300),
            push_token: None,
        }
    }
}

impl SpendIngestConfig {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let secs = |name: &'static str, default: Duration| {
            parse_number(get(name), name, default.as_secs()).map(Duration::from_secs)
        };
        let push_token = get("SPEND_PUSH_TOKEN");
        if let Some(token) = &push_token
            && is_placeholder(token)
        {
            return Err(ConfigError::Invalid {
                name: "SPEND_PUSH_TOKEN",
                reason: "looks like a placeholder or is shorter than 16 characters".into(),
            });
        }
        Ok(Self {
            poll_every: secs("SPEND_INGEST_POLL_SECS", defaults.poll_every)?,
            overlap: secs("SPEND_INGEST_OVERLAP_SECS", defaults.overlap)?,
            lookback: secs("SPEND_INGEST_LOOKBACK_SECS", defaults.lookback)?,
            long_overlap: secs("SPEND_INGEST_LONG_OVERLAP_SECS", defaults.long_overlap)?,
            long_sweep_every: secs("SPEND_INGEST_LONG_SWEEP_SECS", defaults.long_sweep_every)?,
            push_token: push_token.map(SecretString::from),
        })
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "MASTER_KEY is not set; set it to a random secret of at least 16 characters (or unset every variable to run in dev mode)"
    )]
    MissingMasterKey,
    #[error(
        "MASTER_KEY looks like a placeholder or is shorter than 16 characters; generate one with `openssl rand -hex 32`"
    )]
    PlaceholderMasterKey,
    #[error("DATABASE_URL is not set")]
    MissingDatabaseUrl,
    #[error("ENCRYPTION_KEY is not set; generate one with `openssl rand -base64 32`")]
    MissingEncryptionKey,
    #[error("ENCRYPTION_KEY must be 32 bytes encoded in base64 (`openssl rand -base64 32`)")]
    InvalidEncryptionKey,
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("dev keys: {0}")]
    DevKeys(String),
}

/// Where dev mode keeps its generated keys between runs.
pub fn dev_keys_path() -> PathBuf {
    std::env::var_os("SAAS_DEV_KEYS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".saas-dev-keys.env"))
}

impl Config {
    /// Reads the process environment. In dev mode the returned keys are `Some` when they were
    /// generated by this call (the caller shows them once).
    pub fn from_env() -> Result<(Self, Option<DevKeys>), ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), &dev_keys_path())
    }

    pub fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        dev_keys_file: &std::path::Path,
    ) -> Result<(Self, Option<DevKeys>), ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let dev_mode = is_dev_mode(&get)?;

        let log_format = log_format(get("LOG_FORMAT"))?;
        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(raw) => raw.parse().map_err(|_| ConfigError::Invalid {
                name: "HOST",
                reason: format!("not an IP address: {raw:?}"),
            })?,
        };
        let port = parse_number(get("PORT"), "PORT", DEFAULT_PORT)?;
        let db_pool_size = parse_number(get("DATABASE_POOL_SIZE"), "DATABASE_POOL_SIZE", 20)?;
        let read_wait_timeout = Duration::from_millis(parse_number(
            get("READ_WAIT_TIMEOUT_MS"),
            "READ_WAIT_TIMEOUT_MS",
            3000,
        )?);

        let litellm_resync_every = Duration::from_secs(parse_number(
            get("LITELLM_RESYNC_SECS"),
            "LITELLM_RESYNC_SECS",
            300,
        )?);

        let spend_ingest = SpendIngestConfig::from_lookup(get)?;
        let background_threads = parse_number(get("BACKGROUND_THREADS"), "BACKGROUND_THREADS", 1)?;
        let background_nice = parse_number(get("BACKGROUND_NICE"), "BACKGROUND_NICE", 10)?;
        if !(0..=19).contains(&background_nice) {
            return Err(ConfigError::Invalid {
                name: "BACKGROUND_NICE",
                reason: "must be between 0 and 19".into(),
            });
        }
        let prices_max_age = Duration::from_secs(parse_number(
            get("PRICES_MAX_AGE_SECS"),
            "PRICES_MAX_AGE_SECS",
            app::gateway::prices::DEFAULT_MAX_AGE.as_secs(),
        )?);
        let estimate_grace = Duration::from_secs(parse_number(
            get("USAGE_ESTIMATE_GRACE_SECS"),
            "USAGE_ESTIMATE_GRACE_SECS",
            60,
        )?);
        let admin_failures_per_minute = parse_number(
            get("ADMIN_FAILURES_PER_MINUTE"),
            "ADMIN_FAILURES_PER_MINUTE",
            crate::panel::login_limit::MAX_FAILURES,
        )?;
        let edge = EdgeConfig::from_lookup(get, dev_mode)?;

        if dev_mode {
            let (keys, created) = dev_keys::load_or_create(dev_keys_file)
                .map_err(|e| ConfigError::DevKeys(e.to_string()))?;
            // `DEV_MODE=1` (scripts/dev) keeps the dev keys but may name the database and a
            // LiteLLM to drive; with nothing set these are absent.
            let config = Self {
                database_url: get("DATABASE_URL")
                    .unwrap_or_else(|| DEV_DATABASE_URL.into())
                    .into(),
                master_key: keys.master_key.clone(),
                encryption_key: keys.encryption_key.clone(),
                host,
                port,
                litellm_proxy_url: get("LITELLM_PROXY_URL")
                    .unwrap_or_else(|| DEV_LITELLM_URL.to_owned()),
                litellm_master_key: get("LITELLM_MASTER_KEY").map(SecretString::from),
                log_format,
                db_pool_size,
                read_wait_timeout,
                litellm_resync_every,
                spend_ingest,
                admin_failures_per_minute,
                background_threads,
                background_nice,
                prices_max_age,
                estimate_grace,
                edge,
                dev_mode: true,
            };
            return Ok((config, created.then_some(keys)));
        }

        let master_key = get("MASTER_KEY").ok_or(ConfigError::MissingMasterKey)?;
        if is_placeholder(&master_key) {
            return Err(ConfigError::PlaceholderMasterKey);
        }
        let encryption_key = get("ENCRYPTION_KEY").ok_or(ConfigError::MissingEncryptionKey)?;
        validate_encryption_key(&encryption_key)?;
        let config = Self {
            database_url: get("DATABASE_URL")
                .ok_or(ConfigError::MissingDatabaseUrl)?
                .into(),
            master_key: master_key.into(),
            encryption_key: encryption_key.into(),
            host,
            port,
            litellm_proxy_url: get("LITELLM_PROXY_URL").unwrap_or_else(|| DEV_LITELLM_URL.into()),
            litellm_master_key: get("LITELLM_MASTER_KEY").map(SecretString::from),
            log_format,
            db_pool_size,
            read_wait_timeout,
            litellm_resync_every,
            spend_ingest,
            admin_failures_per_minute,
            background_threads,
            background_nice,
            prices_max_age,
            estimate_grace,
            edge,
            dev_mode: false,
        };
        Ok((config, None))
    }

    /// The 32-byte key for encrypting secrets at rest (validated at load).
    pub fn encryption_key_bytes(&self) -> [u8; 32] {
        decode_encryption_key(self.encryption_key.expose_secret())
            .expect("validated when the config was loaded")
    }

    /// The key that seals the event log (derived from ENCRYPTION_KEY, so it lives where that
    /// does, never in the database). Rotating ENCRYPTION_KEY starts a new seal key: seals made
    /// before verify only with the old one.
    pub fn seal_key(&self) -> [u8; 32] {
        seal_key_of(&self.encryption_key_bytes())
    }

    /// Signs and recognises the gateway's call ids: a key derived from ENCRYPTION_KEY, and
    /// during a rotation from ENCRYPTION_KEY_OLD too, so rows of calls made just before the
    /// restart are still matched to their records.
    pub fn call_ids(&self) -> Result<app::usage::CallIds, ConfigError> {
        let of = |key: &[u8; 32]| derived_key(key, b"saas-litellm call ids v1");
        Ok(app::usage::CallIds::new(
            of(&self.encryption_key_bytes()),
            old_encryption_key()?.as_ref().map(of),
        ))
    }
}

/// What `replay` and `verify` need, as in the original project: the database alone
/// (`DATABASE_URL`, or the dev database when nothing is configured) and how to log.
#[derive(Debug, Clone)]
pub struct DatabaseOnly {
    pub database_url: SecretString,
    pub log_format: LogFormat,
    /// `ENCRYPTION_KEY`, if set (only `verify --chain` needs it, for the seals).
    encryption_key: Option<[u8; 32]>,
    dev_mode: bool,
}

impl DatabaseOnly {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let dev_mode = is_dev_mode(&get)?;
        let database_url = match get("DATABASE_URL") {
            Some(url) => url,
            None if dev_mode => DEV_DATABASE_URL.to_owned(),
            None => return Err(ConfigError::MissingDatabaseUrl),
        };
        let encryption_key = get("ENCRYPTION_KEY")
            .map(|raw| decode_encryption_key(&raw).ok_or(ConfigError::InvalidEncryptionKey))
            .transpose()?;
        Ok(Self {
            database_url: database_url.into(),
            log_format: log_format(get("LOG_FORMAT"))?,
            encryption_key,
            dev_mode,
        })
    }

    /// The key the event log's seals are made with: `ENCRYPTION_KEY`, or in dev mode the dev
    /// key file's.
    pub fn seal_key(&self) -> Result<[u8; 32], ConfigError> {
        let key = match (self.encryption_key, self.dev_mode) {
            (Some(key), _) => key,
            (None, true) => {
                // Read only: a key made up now could not have sealed anything.
                let keys = dev_keys::load(&dev_keys_path())
                    .map_err(|e| ConfigError::DevKeys(e.to_string()))?
                    .ok_or(ConfigError::MissingEncryptionKey)?;
                decode_encryption_key(keys.encryption_key.expose_secret())
                    .ok_or(ConfigError::InvalidEncryptionKey)?
            }
            (None, false) => return Err(ConfigError::MissingEncryptionKey),
        };
        Ok(seal_key_of(&key))
    }
}

/// Dev mode: none of the deployment's variables is set (`get` already treats blank as unset),
/// or `DEV_MODE=1`, which keeps the dev keys while `DATABASE_URL` and the LiteLLM variables
/// are read (how `scripts/dev` wires a local LiteLLM). Real keys beside `DEV_MODE` are refused:
/// which keys would be used must never be a guess.
fn is_dev_mode(get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match get("DEV_MODE").as_deref() {
        None | Some("0") | Some("false") => Ok(CONFIG_VARS.iter().all(|name| get(name).is_none())),
        Some("1") | Some("true") => {
            if get("MASTER_KEY").is_some() || get("ENCRYPTION_KEY").is_some() {
                return Err(ConfigError::Invalid {
                    name: "DEV_MODE",
                    reason: "dev mode uses the dev keys file; unset MASTER_KEY and ENCRYPTION_KEY, or unset DEV_MODE".into(),
                });
            }
            Ok(true)
        }
        Some(other) => Err(ConfigError::Invalid {
            name: "DEV_MODE",
            reason: format!("expected 1 or 0, got {other:?}"),
        }),
    }
}

fn log_format(raw: Option<String>) -> Result<LogFormat, ConfigError> {
    match raw.as_deref() {
        None | Some("pretty") | Some("text") => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::Invalid {
            name: "LOG_FORMAT",
            reason: format!("expected `json` or `pretty`, got {other:?}"),
        }),
    }
}

fn parse_number<T: std::str::FromStr>(
    raw: Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("not a valid number: {raw:?}"),
        }),
    }
}

/// Refuses keys copied from examples: too short, or containing a tell-tale word.
pub fn is_placeholder(key: &str) -> bool {
    const TELLS: [&str; 9] = [
        "change",
        "placeholder",
        "example",
        "your",
        "xxxx",
        "sk-1234",
        "secret",
        "default",
        "replace",
    ];
    let lower = key.to_ascii_lowercase();
    let distinct = {
        let mut chars: Vec<char> = key.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    key.chars().count() < 16 || distinct < 6 || TELLS.iter().any(|tell| lower.contains(tell))
}

/// The seal key derived from an `ENCRYPTION_KEY`'s bytes.
pub fn seal_key_of(encryption_key: &[u8; 32]) -> [u8; 32] {
    derived_key(encryption_key, b"saas-litellm event seals v1")
}

/// A key for one purpose, derived from an `ENCRYPTION_KEY`'s bytes and the purpose's label.
fn derived_key(encryption_key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(encryption_key)
        .expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// `ENCRYPTION_KEY_OLD`: the key an `ENCRYPTION_KEY` rotation moves away from, if set.
pub fn old_encryption_key() -> Result<Option<[u8; 32]>, ConfigError> {
    match std::env::var("ENCRYPTION_KEY_OLD") {
        Ok(raw) if !raw.trim().is_empty() => {
            decode_encryption_key(&raw)
                .map(Some)
                .ok_or(ConfigError::Invalid {
                    name: "ENCRYPTION_KEY_OLD",
                    reason: "must be 32 bytes encoded in base64".into(),
                })
        }
        _ => Ok(None),
    }
}

/// The 32 bytes of a base64 `ENCRYPTION_KEY`, if it is one.
pub fn decode_encryption_key(raw: &str) -> Option<[u8; 32]> {
    BASE64.decode(raw.trim()).ok()?.try_into().ok()
}

fn validate_encryption_key(raw: &str) -> Result<(), ConfigError> {
    decode_encryption_key(raw)
        .map(|_| ())
        .ok_or(ConfigError::InvalidEncryptionKey)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const GOOD_MASTER: &str = "mk-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e";
    const GOOD_ENC: &str = "q0vZ7kzj6m3p1bq8sX2c4d5e6f7g8h9i0j1k2l3m4n4=";

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn temp_keys_file() -> PathBuf {
        std::env::temp_dir().join(format!("saas-dev-keys-{}.env", uuid::Uuid::new_v4()))
    }

    #[test]
    fn full_config_is_read() {
        let (config, shown) = Config::from_lookup(
            lookup(&[
                ("DATABASE_URL", "postgres://db/x"),
                ("MASTER_KEY", GOOD_MASTER),
                ("ENCRYPTION_KEY", GOOD_ENC),
                ("PORT", "9000"),
                ("LOG_FORMAT", "json"),
            ]),
            &temp_keys_file(),
        )
        .unwrap();
        assert!(!config.dev_mode);
        assert!(shown.is_none());
        assert_eq!(config.port, 9000);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.encryption_key_bytes().len(), 32);
    }

    #[test]
    fn configured_without_master_key_refuses_to_start() {
        let result = Config::from_lookup(
            lookup(&[
                ("DATABASE_URL", "postgres://db/x"),
                ("ENCRYPTION_KEY", GOOD_ENC),
            ]),
            &temp_keys_file(),
        );
        assert_eq!(result.unwrap_err(), ConfigError::MissingMasterKey);
    }

    #[test]
    fn placeholder_master_keys_are_refused() {
        for key in [
            "sk-1234",
            "change-me-please-now",
            "your-master-key-here",
            "aaaaaaaaaaaaaaaaaaaaaa",
        ] {
            let result = Config::from_lookup(
                lookup(&[
                    ("DATABASE_URL", "postgres://db/x"),
                    ("MASTER_KEY", key),
                    ("ENCRYPTION_KEY", GOOD_ENC),
                ]),
                &temp_keys_file(),
            );
            assert_eq!(
                result.unwrap_err(),
                ConfigError::PlaceholderMasterKey,
                "{key}"
            );
        }
    }

    #[test]
    fn background_settings_have_defaults_and_bounds() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("DATABASE_URL", "postgres://db/x"),
                ("MASTER_KEY", "mk-a-real-looking-key-0123456789"),
                ("ENCRYPTION_KEY", GOOD_ENC),
            ];
            vars.extend_from_slice(extra);
            Config::from_lookup(lookup(&vars), &temp_keys_file())
        };
        let (config, _) = with(&[]).unwrap();
        assert_eq!((config.background_threads, config.background_nice), (1, 10));
        let (config, _) = with(&[("BACKGROUND_THREADS", "0"), ("BACKGROUND_NICE", "0")]).unwrap();
        assert_eq!((config.background_threads, config.background_nice), (0, 0));
        for nice in ["-5", "20", "x"] {
            assert!(
                matches!(
                    with(&[("BACKGROUND_NICE", nice)]),
                    Err(ConfigError::Invalid {
                        name: "BACKGROUND_NICE",
                        ..
                    })
                ),
                "{nice}"
            );
        }
    }

    #[test]
    fn a_malformed_encryption_key_is_refused() {
        let result = Config::from_lookup(
            lookup(&[
                ("DATABASE_URL", "postgres://db/x"),
                ("MASTER_KEY", GOOD_MASTER),
                ("ENCRYPTION_KEY", "not-base64-or-too-short"),
            ]),
            &temp_keys_file(),
        );
        assert_eq!(result.unwrap_err(), ConfigError::InvalidEncryptionKey);
    }

    #[test]
    fn no_config_at_all_is_dev_mode_with_keys_generated_once() {
        let file = temp_keys_file();
        let (config, shown) = Config::from_lookup(lookup(&[]), &file).unwrap();
        assert!(config.dev_mode);
        assert_eq!(config.database_url.expose_secret(), DEV_DATABASE_URL);
        let shown = shown.expect("first run shows the generated keys");
        assert!(!is_placeholder(shown.master_key.expose_secret()));

        let (again, shown_again) = Config::from_lookup(lookup(&[]), &file).unwrap();
        assert!(shown_again.is_none(), "keys are shown only when generated");
        assert_eq!(
            again.master_key.expose_secret(),
            config.master_key.expose_secret()
        );
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn dev_mode_on_request_keeps_the_dev_keys_and_takes_litellm_and_the_database() {
        let file = temp_keys_file();
        let env = [
            ("DEV_MODE", "1"),
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/elsewhere",
            ),
            ("LITELLM_PROXY_URL", "http://127.0.0.1:8002"),
            ("LITELLM_MASTER_KEY", "sk-litellm-dev-0123456789"),
        ];
        let (config, shown) = Config::from_lookup(lookup(&env), &file).unwrap();
        assert!(config.dev_mode);
        let keys = shown.expect("generated on the first run");
        assert_eq!(
            config.master_key.expose_secret(),
            keys.master_key.expose_secret()
        );
        assert!(config.database_url.expose_secret().ends_with("/elsewhere"));
        assert_eq!(config.litellm_proxy_url, "http://127.0.0.1:8002");
        assert!(config.litellm_master_key.is_some());
        // The same variables without DEV_MODE are a deployment, which needs its own keys.
        assert_eq!(
            Config::from_lookup(lookup(&env[1..]), &file).unwrap_err(),
            ConfigError::MissingMasterKey
        );
        for refused in [
            vec![
                ("DEV_MODE", "1"),
                ("MASTER_KEY", "a-real-looking-master-key-42"),
            ],
            vec![("DEV_MODE", "yes")],
        ] {
            assert!(matches!(
                Config::from_lookup(lookup(&refused), &file),
                Err(ConfigError::Invalid {
                    name: "DEV_MODE",
                    ..
                })
            ));
        }
        std::fs::remove_file(file).unwrap();
    }
}
