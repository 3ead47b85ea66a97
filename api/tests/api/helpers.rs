//! The API test kit: the service on a random port over a fresh database, admin requests, the
//! LiteLLM double attached, teams made to a spec, and reading money out of JSON.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use api::config::{Config, EdgeConfig, LogFormat, SpendIngestConfig};
use api::startup::Application;
use litellm::double::LitellmDouble;
use reqwest::{RequestBuilder, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const MASTER_KEY: &str = "mk-test-8c1f0e9a7b6d5c4e3f2a1b0c";
pub const ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        api::telemetry::init(LogFormat::Pretty);
    }
});

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub database_url: String,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned().into(),
        master_key: MASTER_KEY.to_owned().into(),
        encryption_key: ENCRYPTION_KEY.to_owned().into(),
        host: [127, 0, 0, 1].into(),
        port: 0,
        litellm_proxy_url: "http://127.0.0.1:9".into(),
        litellm_master_key: None,
        log_format: LogFormat::Pretty,
        db_pool_size: 10,
        read_wait_timeout: Duration::from_secs(5),
        litellm_resync_every: Duration::from_secs(300),
        spend_ingest: SpendIngestConfig::default(),
        admin_failures_per_minute: api::panel::login_limit::MAX_FAILURES,
        background_threads: 0,
        background_nice: 0,
        prices_max_age: Duration::from_secs(300),
        estimate_grace: Duration::ZERO,
        // The tests' webhook receivers listen on loopback.
        edge: EdgeConfig {
            allow_private_webhooks: true,
            ..EdgeConfig::default()
        },
        dev_mode: false,
    }
}

/// Starts the service on a database that does not exist yet (the service creates it).
pub async fn spawn_app() -> TestApp {
    let url = testkit::database_url(&testkit::empty_database_name()).unwrap();
    spawn_app_on(&url).await
}

pub async fn spawn_app_on(database_url: &str) -> TestApp {
    spawn(database_url, |_| {}).await
}

/// Starts the service with a tweaked configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let url = testkit::database_url(&testkit::empty_database_name()).unwrap();
    spawn(&url, tweak).await
}

/// Starts another instance on an existing database (two processes sharing one store).
pub async fn spawn_app_with_database(
    database_url: &str,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    spawn(database_url, tweak).await
}

async fn spawn(database_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    LazyLock::force(&TRACING);
    let mut config = test_config(database_url);
    tweak(&mut config);
    let app = Application::build(config)
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        database_url: database_url.to_owned(),
        shutdown,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Holds `consumer`'s checkpoint row, as a stalled projector would: it cannot apply until
    /// the returned transaction is rolled back.
    pub async fn stall_projector(
        &self,
        consumer: &str,
    ) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut blocker = self.pool.begin().await.unwrap();
        sqlx::query("select 1 from consumer_checkpoints where consumer_name = $1 for update")
            .bind(consumer)
            .execute(&mut *blocker)
            .await
            .unwrap();
        blocker
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn admin_get(&self, path: &str) -> RequestBuilder {
        self.client
            .get(self.url(path))
            .header("x-admin-key", MASTER_KEY)
    }

    pub fn admin_post(&self, path: &str) -> RequestBuilder {
        self.client
            .post(self.url(path))
            .header("x-admin-key", MASTER_KEY)
    }

    pub async fn create_org(&self, body: Value) -> Response {
        self.admin_post("/api/organizations/create")
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// GET that waits for `position` to be projected before reading.
    pub async fn get_after(&self, path: &str, position: i64) -> Response {
        self.admin_get(path)
            .header("x-wait-for-position", position.to_string())
            .send()
            .await
            .expect("request sent")
    }

    /// Writes an event as an earlier release stored it, past the application (upcasting and
    /// upgrade tests).
    pub async fn insert_raw_event(&self, aggregate_type: &str, aggregate_id: &str, payload: Value) {
        sqlx::query(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             values ($1, $2, 1, $3, '1.0', $4, '{}')",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(
            payload
                .as_object()
                .and_then(|o| o.keys().next())
                .expect("an externally tagged event")
                .clone(),
        )
        .bind(&payload)
        .execute(&self.pool)
        .await
        .unwrap();
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Stops the service and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Asserts the response is a JSON error with the given status and code; returns the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "JSON error body, got {content_type}"
    );
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    body
}

/// The value of the first sample of `series` whose labels include every `labels` pair.
pub fn sample(text: &str, series: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .next()
}

impl TestApp {
    /// The text of `/metrics` (Prometheus' format).
    pub async fn scrape(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// POST as admin with a JSON body; returns status and body.
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .admin_post(path)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET as admin, waiting for `position` when given.
    pub async fn get_json(&self, path: &str, position: Option<i64>) -> (u16, Value) {
        self.get_json_as(MASTER_KEY, path, position).await
    }

    /// GET with this admin key (a rotated one, say), waiting for `position` when given.
    pub async fn get_json_as(
        &self,
        admin_key: &str,
        path: &str,
        position: Option<i64>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .get(self.url(path))
            .header("x-admin-key", admin_key);
        if let Some(position) = position {
            request = request.header("x-wait-for-position", position.to_string());
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs `path` as admin until it answers 200 with a body `done` accepts, for up to
    /// `within`; panics with `what` and the last answer otherwise. For outcomes that appear
    /// asynchronously (projections, ingestion, deliveries).
    pub async fn get_until(
        &self,
        path: &str,
        within: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, body) = self.get_json(path, None).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: last answer {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    pub async fn events_of(&self, aggregate_type: &str) -> i64 {
        sqlx::query_scalar("select count(*) from events where aggregate_type = $1")
            .bind(aggregate_type)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// An organization and the model groups `gpt` (gpt-4o, gpt-4o-mini) and `claude`.
    /// Waits until spend ingestion has pulled at least `rows` of LiteLLM's spend-log rows.
    pub async fn wait_rows_pulled(&self, rows: i64) {
        self.get_until(
            "/api/usage/ingestion",
            Duration::from_secs(10),
            "LiteLLM's rows were never pulled",
            |status| {
                status["cursors"].as_array().into_iter().flatten().any(|c| {
                    c["source"] == "litellm_spend_logs" && c["rows_seen"].as_i64() >= Some(rows)
                })
            },
        )
        .await;
    }

    pub async fn seed_catalog(&self) -> i64 {
        let (status, _) = self
            .post_json(
                "/api/organizations/create",
                serde_json::json!({"organization_id": "org_acme", "name": "Acme"}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = self
            .post_json(
                "/api/model-groups/create",
                serde_json::json!({"group_name": "gpt", "models": ["gpt-4o", "gpt-4o-mini"]}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, body) = self
            .post_json(
                "/api/model-groups/create",
                serde_json::json!({"group_name": "claude", "models": ["claude-3-5-sonnet"]}),
            )
            .await;
        assert_eq!(status, 201);
        body["position"].as_i64().unwrap()
    }
}

/// LiteLLM's master key in every test that attaches the double.
pub const LITELLM_MASTER: &str = "sk-litellm-master-for-tests";

/// The LiteLLM double with the models the seeded groups name.
pub async fn double() -> LitellmDouble {
    LitellmDouble::start(
        LITELLM_MASTER,
        &["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"],
    )
    .await
    .unwrap()
}

/// The service wired to `double` (sync on), spend ingestion off unless `tweak` turns it on.
pub async fn spawn_app_with_double(
    double: &LitellmDouble,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let url = double.base_url();
    spawn_app_with(move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
        c.spend_ingest.poll_every = Duration::ZERO;
        tweak(c);
    })
    .await
}

/// A team to create: what a test varies, the rest as most tests want it (organization
/// `org_acme`, alias = id, group `gpt`). Fields left unset are left out of the request.
pub struct TeamSpec {
    body: serde_json::Map<String, Value>,
}

impl TeamSpec {
    pub fn new(team_id: &str, credits: &str) -> Self {
        let Value::Object(body) = json!({"organization_id": "org_acme", "team_id": team_id,
            "team_alias": team_id, "model_groups": ["gpt"], "credits": credits})
        else {
            unreachable!("a JSON object literal")
        };
        Self { body }
    }

    pub fn set(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.body.insert(field.to_owned(), value.into());
        self
    }

    pub fn mode(self, budget_mode: &str) -> Self {
        self.set("budget_mode", budget_mode)
    }

    pub fn markup(self, percent: &str) -> Self {
        self.set(
            "markup_percent",
            Value::from_str(percent).expect("a JSON number"),
        )
    }

    pub fn groups(self, groups: Value) -> Self {
        self.set("model_groups", groups)
    }

    fn team_id(&self) -> String {
        self.body["team_id"].as_str().unwrap_or_default().to_owned()
    }
}

/// A team just created: its key and the position of its creation.
pub struct NewTeam {
    pub key: String,
    pub position: i64,
}

impl TestApp {
    /// Creates the team (asserting 201).
    pub async fn team(&self, spec: TeamSpec) -> NewTeam {
        let (status, body) = self
            .post_json("/api/teams/create", Value::Object(spec.body))
            .await;
        assert_eq!(status, 201, "{body}");
        NewTeam {
            key: body["virtual_key"].as_str().unwrap().to_owned(),
            position: body["position"].as_i64().unwrap(),
        }
    }

    /// Creates the team and waits until LiteLLM holds it.
    pub async fn team_in_sync(&self, spec: TeamSpec) -> NewTeam {
        let team_id = spec.team_id();
        let team = self.team(spec).await;
        wait_in_sync(self, &team_id, team.position).await;
        team
    }
}

/// Waits until LiteLLM holds the team's state as of `position` (or later).
pub async fn wait_in_sync(app: &TestApp, team_id: &str, position: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, team) = app.get_json(&format!("/api/teams/{team_id}"), None).await;
        let sync = &team["litellm_sync"];
        if sync["status"] == "in_sync" && sync["synced_position"].as_i64().unwrap_or(0) >= position
        {
            return team;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "team {team_id} never got in sync: {sync}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An amount in an answer, exactly: a JSON number (or a string of one) as a decimal.
pub fn dec(value: &Value) -> Decimal {
    let text = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or(value.to_string());
    Decimal::from_str(&text).unwrap_or_else(|_| panic!("not a decimal: {value}"))
}
