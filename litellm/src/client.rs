//! The typed client for LiteLLM's management API, with errors classified once.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::LitellmError;
use crate::types::{KeyInfo, KeySpec, SpendLogPage, TeamInfo, TeamSpec};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub master_key: SecretString,
    /// Short: a slow LiteLLM must not hold our workers.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, master_key: SecretString) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            master_key,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
pub struct LitellmClient {
    http: reqwest::Client,
    /// For LLM calls: no overall deadline (a completion may stream for minutes), only connect
    /// and per-read timeouts.
    llm_http: reqwest::Client,
    config: ClientConfig,
}

impl LitellmClient {
    pub fn new(config: ClientConfig) -> Result<Self, LitellmError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| LitellmError::Unreachable(e.to_string()))?;
        let llm_http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| LitellmError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            llm_http,
            config,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, LitellmError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.config.base_url))
            .bearer_auth(self.config.master_key.expose_secret())
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        // Parsed from the bytes as they came: a spend-log page is megabytes, and its text
        // would be one more copy of it.
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(LitellmError::from_response(
                status.as_u16(),
                &String::from_utf8_lossy(&body),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| LitellmError::Garbage(format!("{path}: {e}")))
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, LitellmError> {
        self.call(Method::POST, path, &[], Some(&body)).await
    }

    /// Forwards an LLM call (e.g. `/v1/chat/completions`) with a team's virtual key and hands
    /// back LiteLLM's response as it starts, so a stream can be passed on chunk by chunk.
    /// LiteLLM logs the call under `call_id` (`x-litellm-call-id`).
    pub async fn forward(
        &self,
        path: &str,
        virtual_key: &str,
        call_id: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, LitellmError> {
        self.llm_http
            .post(format!("{}{path}", self.config.base_url))
            .bearer_auth(virtual_key)
            .header("content-type", "application/json")
            .header("x-litellm-call-id", call_id)
            .body(body)
            .send()
            .await
            .map_err(transport)
    }

    /// Every model's `model_info` from `/model/info`, by model name (prices per token live there).
    pub async fn model_infos(&self) -> Result<Vec<(String, Value)>, LitellmError> {
        let value: Value = self.call(Method::GET, "/model/info", &[], None).await?;
        Ok(value["data"]
            .as_array()
            .ok_or_else(|| LitellmError::Garbage("/model/info without data".into()))?
            .iter()
            .filter_map(|m| {
                let name = m["model_name"].as_str()?.to_owned();
                Some((name, m["model_info"].clone()))
            })
            .collect())
    }

    /// `GET /health/readiness`: LiteLLM up with its database.
    pub async fn ready(&self) -> Result<bool, LitellmError> {
        let value: Value = self
            .call(Method::GET, "/health/readiness", &[], None)
            .await?;
        Ok(value["status"] == "healthy" && value["db"] == "connected")
    }

    /// The model names LiteLLM serves (`model_name` of each `/model/info` entry), sorted.
    pub async fn model_names(&self) -> Result<Vec<String>, LitellmError> {
        let value: Value = self.call(Method::GET, "/model/info", &[], None).await?;
        let mut names: Vec<String> = value["data"]
            .as_array()
            .ok_or_else(|| LitellmError::Garbage("/model/info without data".into()))?
            .iter()
            .filter_map(|m| m["model_name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn team_info(&self, team_id: &str) -> Result<Option<TeamInfo>, LitellmError> {
        match self
            .call::<Value>(Method::GET, "/team/info", &[("team_id", team_id)], None)
            .await
        {
            Ok(mut value) => {
                let garbage =
                    |e: serde_json::Error| LitellmError::Garbage(format!("/team/info: {e}"));
                let mut info: TeamInfo =
                    serde_json::from_value(value["team_info"].take()).map_err(garbage)?;
                if !value["keys"].is_null() {
                    info.keys = serde_json::from_value(value["keys"].take()).map_err(garbage)?;
                }
                Ok(Some(info))
            }
            Err(LitellmError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn team_new(&self, spec: &TeamSpec) -> Result<(), LitellmError> {
        self.post("/team/new", to_value(spec)).await.map(drop)
    }

    pub async fn team_update(&self, spec: &TeamSpec) -> Result<(), LitellmError> {
        self.post("/team/update", to_value(spec)).await.map(drop)
    }

    /// `/team/block` or `/team/unblock`. LiteLLM caches auth objects, so the effect on requests
    /// can take up to ~10 s; blocking the key as well is immediate.
    pub async fn team_set_blocked(&self, team_id: &str, blocked: bool) -> Result<(), LitellmError> {
        let path = if blocked {
            "/team/block"
        } else {
            "/team/unblock"
        };
        self.post(path, json!({"team_id": team_id})).await.map(drop)
    }

    /// Deletes the team and, in LiteLLM, every key of the team. Already gone is success.
    pub async fn team_delete(&self, team_id: &str) -> Result<(), LitellmError> {
        match self
            .post("/team/delete", json!({"team_ids": [team_id]}))
            .await
        {
            Ok(_) | Err(LitellmError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// One page of `/spend/logs/v2` for `[start, end]` (`YYYY-MM-DD HH:MM:SS`, UTC), oldest
    /// first. `page` starts at 1; `page_size` is at most 1000.
    pub async fn spend_logs_page(
        &self,
        start: &str,
        end: &str,
        page: u64,
        page_size: u64,
    ) -> Result<SpendLogPage, LitellmError> {
        let page = page.to_string();
        let page_size = page_size.to_string();
        self.call(
            Method::GET,
            "/spend/logs/v2",
            &[
                ("start_date", start),
                ("end_date", end),
                ("page", &page),
                ("page_size", &page_size),
                ("sort_by", "startTime"),
                ("sort_order", "asc"),
            ],
            None,
        )
        .await
    }

    /// `key_or_hash`: the plaintext key or its SHA-256 hex, as LiteLLM accepts both.
    pub async fn key_info(&self, key_or_hash: &str) -> Result<Option<KeyInfo>, LitellmError> {
        match self
            .call::<Value>(Method::GET, "/key/info", &[("key", key_or_hash)], None)
            .await
        {
            Ok(value) => serde_json::from_value(value["info"].clone())
                .map(Some)
                .map_err(|e| LitellmError::Garbage(format!("/key/info: {e}"))),
            Err(LitellmError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Creates our key in LiteLLM under the team. LiteLLM answers 200 without changing
    /// anything when the key exists, so callers check with `key_info` first.
    pub async fn key_generate(&self, spec: &KeySpec) -> Result<(), LitellmError> {
        let body = json!({
            "key": spec.expose(),
            "team_id": spec.team_id,
            "models": [],
            "metadata": {"saas_fingerprint": spec.fingerprint},
        });
        self.post("/key/generate", body).await.map(drop)
    }

    /// `/key/update`: sets the given fields of a key (absent fields stay as they are).
    pub async fn key_update(&self, key_or_hash: &str, fields: Value) -> Result<(), LitellmError> {
        let mut body = fields;
        body["key"] = json!(key_or_hash);
        self.post("/key/update", body).await.map(drop)
    }

    /// `/v1/models` as seen by a virtual key: the models that key may call.
    pub async fn models_for_key(&self, key: &str) -> Result<Vec<String>, LitellmError> {
        let response = self
            .http
            .get(format!("{}/v1/models", self.config.base_url))
            .bearer_auth(key)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(LitellmError::from_response(status.as_u16(), &text));
        }
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| LitellmError::Garbage(format!("/v1/models: {e}")))?;
        let mut ids: Vec<String> = value["data"]
            .as_array()
            .ok_or_else(|| LitellmError::Garbage("/v1/models without data".into()))?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub async fn key_set_blocked(
        &self,
        key_or_hash: &str,
        blocked: bool,
    ) -> Result<(), LitellmError> {
        let path = if blocked {
            "/key/block"
        } else {
            "/key/unblock"
        };
        self.post(path, json!({"key": key_or_hash})).await.map(drop)
    }

    /// Already gone is success.
    pub async fn key_delete(&self, key_or_hash: &str) -> Result<(), LitellmError> {
        match self
            .post("/key/delete", json!({"keys": [key_or_hash]}))
            .await
        {
            Ok(_) | Err(LitellmError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("plain structs serialize")
}

fn transport(error: reqwest::Error) -> LitellmError {
    if error.is_timeout() {
        LitellmError::Timeout
    } else if let Some(status) = error.status() {
        LitellmError::from_response(status.as_u16(), "")
    } else {
        // reqwest errors name the URL, never headers: the master key cannot leak here.
        LitellmError::Unreachable(error.without_url().to_string())
    }
}
