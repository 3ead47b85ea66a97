//! An in-process LiteLLM for fast tests: the management endpoints we use, answering with the
//! shapes and status codes captured from the real proxy (see `../shared/litellm/README.md`),
//! plus fault injection (down, slow, 500, 401, garbage).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod chat;
mod spend;

pub use chat::{DEFAULT_INPUT_PRICE, DEFAULT_OUTPUT_PRICE};

pub use spend::SpendEntry;

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// Every call waits this long first (beyond the client's timeout = a timeout).
    Slow(Duration),
    /// Every call answers 500 like LiteLLM without its database.
    ServerError,
    /// Every call answers 401 as if our master key were wrong.
    Unauthorized,
    /// Every call answers 200 with a body that is not JSON.
    Garbage,
}

#[derive(Debug, Default)]
struct World {
    teams: BTreeMap<String, Value>,
    /// By SHA-256 hex of the key, as LiteLLM stores them. Written only through `insert_key`
    /// and `remove_key`, which keep `team_keys` in step.
    keys: BTreeMap<String, Value>,
    /// Per team, the tokens of its live keys: LiteLLM finds a team's keys through an index,
    /// and a scan of every key on each `/team/info` made the double, which shares the cores in
    /// the benchmarks, the busiest process after PostgreSQL at 10,000 teams.
    team_keys: std::collections::HashMap<String, std::collections::BTreeSet<String>>,
    models: Vec<String>,
    mutations: u64,
    spend_logs: Vec<Value>,
    /// The request ids in `spend_logs`.
    spend_log_ids: std::collections::HashSet<String>,
    spend_logs_sorted: bool,
    chat_counter: u64,
    /// Model -> (input, output) price per token, as decimal text.
    prices: BTreeMap<String, (String, String)>,
    /// Caps the tokens each choice produces; `None` (the default) uses the whole output limit,
    /// as a provider may.
    completion_tokens: Option<u64>,
    /// Pause between streamed chunks.
    chunk_delay: Duration,
    /// How long after a call its spend row and counters are written (LiteLLM: 10-15 s).
    spend_delay: Duration,
    /// Per team: the current minute's requests and estimated tokens.
    windows: std::collections::HashMap<String, chat::Window>,
    /// Per team: cost reserved by admitted calls whose spend is not written yet.
    reserved: std::collections::HashMap<String, f64>,
    /// Deleted keys `/key/info` still answers for (LiteLLM answers from its cache).
    deleted_keys: BTreeMap<String, Value>,
    /// Every request's path and query, as LiteLLM's access log keeps them.
    urls: Vec<String>,
    /// Answers carry no usage: streams end without their usage chunk even when it is asked
    /// for, and plain answers have no `usage` (a provider that breaks off or omits it).
    usage_omitted: bool,
}

impl World {
    fn insert_key(&mut self, token: String, row: Value) {
        if let Some(team) = row["team_id"].as_str() {
            self.team_keys
                .entry(team.to_owned())
                .or_default()
                .insert(token.clone());
        }
        self.keys.insert(token, row);
    }

    fn remove_key(&mut self, token: &str) -> Option<Value> {
        let row = self.keys.remove(token)?;
        if let Some(team) = row["team_id"].as_str()
            && let Some(tokens) = self.team_keys.get_mut(team)
        {
            tokens.remove(token);
            if tokens.is_empty() {
                self.team_keys.remove(team);
            }
        }
        Some(row)
    }

    /// The tokens of a team's live keys, in token order (as a scan of `keys` gives them).
    fn tokens_of_team(&self, team: &str) -> Vec<String> {
        self.team_keys
            .get(team)
            .map(|tokens| tokens.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// LiteLLM's sentinel in `models` for "no model at all".
pub const NO_MODELS: &str = "no-default-models";

/// LiteLLM's time format in spend logs.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Shared {
    master_key: String,
    world: Mutex<World>,
    fault: Mutex<Fault>,
}

/// A running double. `stop`/`start` take it down and bring it back on the same port.
pub struct LitellmDouble {
    shared: Arc<Shared>,
    address: SocketAddr,
    running: Mutex<Option<CancellationToken>>,
}

fn hash(key: &str) -> String {
    crate::key_hash(key)
}

/// The strings of a JSON array (anything else: none).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn number(text: &str) -> Value {
    text.parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": status.to_string()}});
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

impl LitellmDouble {
    pub async fn start(master_key: &str, models: &[&str]) -> std::io::Result<Self> {
        Self::start_on(0, master_key, models).await
    }

    /// Like `start`, on a given loopback port (0 = any).
    pub async fn start_on(port: u16, master_key: &str, models: &[&str]) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            master_key: master_key.to_owned(),
            world: Mutex::new(World {
                models: models.iter().map(|m| m.to_string()).collect(),
                ..World::default()
            }),
            fault: Mutex::new(Fault::None),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let address = listener.local_addr()?;
        let double = Self {
            shared,
            address,
            running: Mutex::new(None),
        };
        double.serve(listener);
        Ok(double)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// Stops listening: connections are refused until `resume`.
    pub fn stop(&self) {
        if let Some(token) = self.running.lock().unwrap().take() {
            token.cancel();
        }
    }

    pub async fn resume(&self) -> std::io::Result<()> {
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    tracing::debug!(%error, "double: port not free yet");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(error),
            }
        };
        self.serve(listener);
        Ok(())
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let token = CancellationToken::new();
        *self.running.lock().unwrap() = Some(token.clone());
        let app = router(self.shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });
    }

    /// The team as LiteLLM would report it, if it exists.
    pub fn team(&self, team_id: &str) -> Option<Value> {
        self.shared
            .world
            .lock()
            .unwrap()
            .teams
            .get(team_id)
            .cloned()
    }

    /// The key row stored for a plaintext key, if any.
    pub fn key(&self, key: &str) -> Option<Value> {
        self.shared
            .world
            .lock()
            .unwrap()
            .keys
            .get(&hash(key))
            .cloned()
    }

    pub fn key_count(&self) -> usize {
        self.shared.world.lock().unwrap().keys.len()
    }

    /// Successful writes so far (to check that work is not repeated).
    pub fn mutations(&self) -> u64 {
        self.shared.world.lock().unwrap().mutations
    }

    /// Simulates an operator editing LiteLLM by hand.
    pub fn tamper_team(&self, team_id: &str, field: &str, value: Value) {
        if let Some(team) = self.shared.world.lock().unwrap().teams.get_mut(team_id) {
            team[field] = value;
        }
    }

    /// Logs requests as LiteLLM would after serving them, moving key and team spend.
    pub fn record_spend(&self, entries: impl IntoIterator<Item = SpendEntry>) {
        let mut world = self.shared.world.lock().unwrap();
        for entry in entries {
            spend::record(&mut world, entry);
        }
    }

    /// Sets a model's per-token prices (decimal text), as `/model/info` will report them.
    pub fn set_prices(&self, model: &str, input: &str, output: &str) {
        self.shared
            .world
            .lock()
            .unwrap()
            .prices
            .insert(model.to_owned(), (input.to_owned(), output.to_owned()));
    }

    /// Caps the tokens each choice produces (below the request's output limit); without it
    /// every choice uses its whole limit.
    pub fn set_completion_tokens(&self, tokens: u64) {
        self.shared.world.lock().unwrap().completion_tokens = Some(tokens);
    }

    /// Writes spend rows and counters this long after each call, as LiteLLM's batch writer does.
    pub fn set_spend_delay(&self, delay: Duration) {
        self.shared.world.lock().unwrap().spend_delay = delay;
    }

    /// Pause between streamed chunks (to see that a stream is passed on as it comes).
    pub fn set_chunk_delay(&self, delay: Duration) {
        self.shared.world.lock().unwrap().chunk_delay = delay;
    }

    /// The paths and queries of every request so far (what an access log would keep).
    pub fn urls(&self) -> Vec<String> {
        self.shared.world.lock().unwrap().urls.clone()
    }

    /// Answers (streamed or not) carry no usage from now on.
    pub fn set_usage_omitted(&self, omitted: bool) {
        self.shared.world.lock().unwrap().usage_omitted = omitted;
    }

    /// Sets a model's price to none (LiteLLM lists the model without a cost).
    pub fn unprice(&self, model: &str) {
        self.set_prices(model, "", "");
    }

    pub fn spend_log_count(&self) -> usize {
        self.shared.world.lock().unwrap().spend_logs.len()
    }

    /// Every spend log row so far, as `/spend/logs/v2` would answer them.
    pub fn spend_logs(&self) -> Vec<Value> {
        self.shared.world.lock().unwrap().spend_logs.clone()
    }

    pub fn delete_key_by_hand(&self, key: &str) {
        self.shared.world.lock().unwrap().remove_key(&hash(key));
    }
}

impl Drop for LitellmDouble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/health/readiness",
            get(|| async { Json(json!({"status": "healthy", "db": "connected"})) }),
        )
        .route("/model/info", get(model_info))
        .route("/team/new", post(team_new))
        .route("/organization/new", post(organizations_need_a_license))
        .route("/organization/list", get(organizations_need_a_license))
        .route("/team/update", post(team_update))
        .route("/team/info", get(team_info))
        .route("/team/delete", post(team_delete))
        .route("/team/block", post(|s, b| team_block(s, b, true)))
        .route("/team/unblock", post(|s, b| team_block(s, b, false)))
        .route("/key/update", post(key_update))
        .route("/v1/models", get(models_for_key))
        .route("/key/generate", post(key_generate))
        .route("/key/info", get(key_info))
        .route("/key/block", post(|s, b| key_block(s, b, true)))
        .route("/key/unblock", post(|s, b| key_block(s, b, false)))
        .route("/key/delete", post(key_delete))
        .route("/spend/logs/v2", get(spend::spend_logs_v2))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(chat::completions))
        .route("/completions", post(chat::completions))
        .route("/v1/messages", post(chat::messages))
        .route("/v1/embeddings", post(chat::embeddings))
        .route("/embeddings", post(chat::embeddings))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults_and_auth,
        ))
        .with_state(shared)
}

async fn faults_and_auth(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let fault = shared.fault.lock().unwrap().clone();
    if let Some(url) = request.uri().path_and_query() {
        shared.world.lock().unwrap().urls.push(url.to_string());
    }
    match fault {
        Fault::None => {}
        Fault::Slow(delay) => tokio::time::sleep(delay).await,
        Fault::ServerError => {
            return error(500, "internal_server_error", "{'error': 'No db connected'}");
        }
        Fault::Unauthorized => {
            return error(
                401,
                "auth_error",
                "Authentication Error, Invalid API key provided.",
            );
        }
        Fault::Garbage => return (StatusCode::OK, "<html>proxy error</html>").into_response(),
    }
    // `/v1/models` and the LLM routes authenticate the caller's virtual key themselves.
    let path = request.uri().path();
    let open = path.starts_with("/health/")
        || path == "/v1/models"
        || path.ends_with("/completions")
        || path.ends_with("/embeddings")
        || path == "/v1/messages";
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !open && bearer != Some(shared.master_key.as_str()) {
        return error(
            401,
            "auth_error",
            "Authentication Error, Only proxy admin can be used to generate, delete, update info for new keys/users/teams.",
        );
    }
    next.run(request).await
}

type S = State<Arc<Shared>>;

async fn model_info(State(shared): S) -> Json<Value> {
    let world = shared.world.lock().unwrap();
    let data: Vec<Value> = world
        .models
        .iter()
        .map(|m| {
            let (input, output) = world.prices.get(m).cloned().unwrap_or((
                chat::DEFAULT_INPUT_PRICE.to_owned(),
                chat::DEFAULT_OUTPUT_PRICE.to_owned(),
            ));
            json!({"model_name": m, "litellm_params": {"model": format!("openai/{m}")},
                   "model_info": {"id": hash(m), "input_cost_per_token": number(&input),
                                  "output_cost_per_token": number(&output)}})
        })
        .collect();
    Json(json!({"data": data}))
}

const TEAM_FIELDS: [&str; 8] = [
    "team_alias",
    "models",
    "max_budget",
    "soft_budget",
    "rpm_limit",
    "tpm_limit",
    "blocked",
    "metadata",
];

/// FastAPI's answer to a body its model refuses: 422 `{"detail": [{type, loc, msg}]}`.
fn validation_errors(body: &Value) -> Option<Response> {
    let mut detail = Vec::new();
    if body
        .get("team_id")
        .is_some_and(|v| !v.is_string() && !v.is_null())
    {
        detail.push(json!({"type": "string_type", "loc": ["body", "team_id"], "msg": "Input should be a valid string"}));
    }
    for field in ["max_budget", "soft_budget"] {
        if let Some(value) = body.get(field)
            && !value.is_number()
            && !value.is_null()
        {
            detail.push(json!({"type": "float_parsing", "loc": ["body", field],
                               "msg": "Input should be a valid number, unable to parse string as a number"}));
        }
    }
    (!detail.is_empty()).then(|| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": detail})),
        )
            .into_response()
    })
}

/// LiteLLM's organizations are an Enterprise feature: without `LITELLM_LICENSE` every
/// organization route answers 403 in FastAPI's `detail` shape (seen on 1.108.7).
async fn organizations_need_a_license() -> Response {
    let body = json!({"detail": {"error": "Organizations are only available for LiteLLM Enterprise users. You must be a LiteLLM Enterprise user to use this feature."}});
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

async fn team_new(State(shared): S, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = validation_errors(&body) {
        return refusal;
    }
    // No organization can exist without a license, so naming one is always refused.
    if let Some(organization) = body["organization_id"].as_str() {
        let message = format!("Organization not found for organization_id={organization}");
        return error(400, "internal_server_error", &message);
    }
    let mut world = shared.world.lock().unwrap();
    let Some(team_id) = body["team_id"].as_str().map(str::to_owned) else {
        return error(
            400,
            "internal_server_error",
            "{'error': 'team_id required by this double'}",
        );
    };
    if world.teams.contains_key(&team_id) {
        let message = format!(
            "{{'error': 'Team id = {team_id} already exists. Please use a different team id.'}}"
        );
        return error(400, "internal_server_error", &message);
    }
    let mut team = json!({"team_id": team_id, "spend": 0.0, "models": [], "blocked": false});
    for field in TEAM_FIELDS {
        if let Some(value) = body.get(field) {
            team[field] = value.clone();
        }
    }
    world.teams.insert(team_id, team.clone());
    world.mutations += 1;
    Json(team).into_response()
}

async fn team_update(State(shared): S, Json(body): Json<Value>) -> Response {
    let mut world = shared.world.lock().unwrap();
    let team_id = body["team_id"].as_str().unwrap_or_default().to_owned();
    let Some(team) = world.teams.get_mut(&team_id) else {
        return error(
            404,
            "internal_server_error",
            &format!("{{'error': 'Team not found, passed team_id={team_id}'}}"),
        );
    };
    // Absent fields stay; nulls clear.
    for field in TEAM_FIELDS {
        if let Some(value) = body.get(field) {
            team[field] = value.clone();
        }
    }
    let team = team.clone();
    world.mutations += 1;
    Json(json!({"team_id": team_id, "data": team})).into_response()
}

async fn team_info(State(shared): S, Query(query): Query<BTreeMap<String, String>>) -> Response {
    let world = shared.world.lock().unwrap();
    let team_id = query.get("team_id").cloned().unwrap_or_default();
    match world.teams.get(&team_id) {
        Some(team) => {
            let keys: Vec<&Value> = world
                .tokens_of_team(&team_id)
                .iter()
                .filter_map(|token| world.keys.get(token))
                .collect();
            Json(json!({"team_id": team_id, "team_info": team, "keys": keys})).into_response()
        }
        None => error(
            404,
            "auth_error",
            &format!("{{'message': 'Team not found, passed team id: {team_id}.'}}"),
        ),
    }
}

async fn team_delete(State(shared): S, Json(body): Json<Value>) -> Response {
    let mut world = shared.world.lock().unwrap();
    let ids: Vec<String> = strings(&body["team_ids"]);
    if let Some(missing) = ids.iter().find(|id| !world.teams.contains_key(*id)) {
        let body =
            json!({"detail": {"error": format!("Team not found, passed team_id={missing}")}});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    for id in &ids {
        world.teams.remove(id);
        for token in world.tokens_of_team(id) {
            if let Some(row) = world.remove_key(&token) {
                world.deleted_keys.insert(token, row);
            }
        }
    }
    world.mutations += 1;
    Json(json!({"deleted_teams": ids})).into_response()
}

async fn key_generate(State(shared): S, Json(body): Json<Value>) -> Response {
    let mut world = shared.world.lock().unwrap();
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    if !key.starts_with("sk-") {
        return error(
            400,
            "internal_server_error",
            "{'error': \"Invalid key format. LiteLLM Virtual Key must start with 'sk-'.\"}",
        );
    }
    if key.len() < 16 {
        return error(
            400,
            "internal_server_error",
            "{'error': 'custom key too short'}",
        );
    }
    let token = hash(&key);
    // Like the real proxy: an existing key is left unchanged, yet the answer is 200.
    if !world.keys.contains_key(&token) {
        let expires = body["duration"]
            .as_str()
            .and_then(duration_secs)
            .map(|secs| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
                    + secs
            });
        let row = json!({
            "token": token, "team_id": body["team_id"], "models": body.get("models").cloned().unwrap_or(json!([])),
            "metadata": body.get("metadata").cloned().unwrap_or(json!({})), "blocked": null, "spend": 0.0,
            "key_name": format!("sk-...{}", &key[key.len() - 4..]), "expires_at_epoch": expires,
        });
        world.insert_key(token.clone(), row);
        world.mutations += 1;
    }
    let mut answer = body.clone();
    answer["token"] = json!(token);
    Json(answer).into_response()
}

/// `"30s"`, `"5m"`, `"2h"`, `"1d"` in seconds.
fn duration_secs(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    Some(number * unit)
}

/// LiteLLM accepts a key or its hash wherever a key is named.
fn token_of(world: &World, key_or_hash: &str) -> String {
    if world.keys.contains_key(key_or_hash) || world.deleted_keys.contains_key(key_or_hash) {
        key_or_hash.to_owned()
    } else {
        hash(key_or_hash)
    }
}

fn find_key<'a>(world: &'a mut World, key_or_hash: &str) -> Option<&'a mut Value> {
    let token = token_of(world, key_or_hash);
    world.keys.get_mut(&token)
}

async fn key_info(State(shared): S, Query(query): Query<BTreeMap<String, String>>) -> Response {
    let mut world = shared.world.lock().unwrap();
    let key = query.get("key").cloned().unwrap_or_default();
    let token = token_of(&world, &key);
    let cached = world.deleted_keys.get(&token).cloned();
    match find_key(&mut world, &key).cloned().or(cached) {
        Some(row) => Json(json!({"key": key, "info": row})).into_response(),
        None => error(404, "not_found_error", "Key not found in database"),
    }
}

async fn key_block(State(shared): S, Json(body): Json<Value>, blocked: bool) -> Response {
    let mut world = shared.world.lock().unwrap();
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    let Some(row) = find_key(&mut world, &key) else {
        return error(404, "not_found_error", "Key not found.");
    };
    row["blocked"] = json!(blocked);
    let row = row.clone();
    world.mutations += 1;
    Json(row).into_response()
}

async fn key_delete(State(shared): S, Json(body): Json<Value>) -> Response {
    let mut world = shared.world.lock().unwrap();
    let keys: Vec<String> = strings(&body["keys"]);
    let mut deleted = Vec::new();
    for key in &keys {
        let token = token_of(&world, key);
        if let Some(row) = world.remove_key(&token) {
            // Like LiteLLM, `/key/info` keeps answering from its cache; requests are refused.
            world.deleted_keys.insert(token, row);
            deleted.push(key.clone());
        }
    }
    if deleted.is_empty() {
        return error(404, "internal_server_error", "{'error': 'No keys found'}");
    }
    world.mutations += 1;
    Json(json!({"deleted_keys": deleted})).into_response()
}

async fn team_block(State(shared): S, Json(body): Json<Value>, blocked: bool) -> Response {
    let mut world = shared.world.lock().unwrap();
    let team_id = body["team_id"].as_str().unwrap_or_default().to_owned();
    let Some(team) = world.teams.get_mut(&team_id) else {
        return error(
            404,
            "internal_server_error",
            &format!("{{'error': 'Team not found, passed team_id={team_id}'}}"),
        );
    };
    team["blocked"] = json!(blocked);
    let team = team.clone();
    world.mutations += 1;
    Json(team).into_response()
}

async fn key_update(State(shared): S, Json(body): Json<Value>) -> Response {
    let mut world = shared.world.lock().unwrap();
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    let Some(row) = find_key(&mut world, &key) else {
        return error(404, "not_found_error", "Key not found.");
    };
    for field in [
        "models",
        "metadata",
        "blocked",
        "max_budget",
        "rpm_limit",
        "tpm_limit",
    ] {
        if let Some(value) = body.get(field) {
            row[field] = value.clone();
        }
    }
    let row = row.clone();
    world.mutations += 1;
    Json(row).into_response()
}

/// The models a virtual key may call: the key's own list, else its team's, else all.
async fn models_for_key(State(shared): S, request: Request) -> Response {
    let mut world = shared.world.lock().unwrap();
    let key = chat::bearer(request.headers());
    let all = world.models.clone();
    let Some(row) = find_key(&mut world, &key).cloned() else {
        return error(
            401,
            "token_not_found_in_db",
            "Authentication Error, Invalid API key provided.",
        );
    };
    let mut models = strings(&row["models"]);
    if models.is_empty() {
        let team = row["team_id"].as_str().and_then(|t| world.teams.get(t));
        models = team.map(|t| strings(&t["models"])).unwrap_or_default();
        if models.is_empty() {
            models = all;
        }
    }
    models.retain(|m| m != NO_MODELS);
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "openai"}))
        .collect();
    Json(json!({"data": data, "object": "list"})).into_response()
}
