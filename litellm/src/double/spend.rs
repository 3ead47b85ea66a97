//! Spend logs in the double: rows shaped like the real `/spend/logs/v2` answer (see the
//! captured response in `../shared/litellm/README.md`), and the key/team spend counters they
//! move, so ingestion and reconciliation can be tested without the real proxy.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, World, error, hash};

/// One request as LiteLLM would log it.
#[derive(Debug, Clone)]
pub struct SpendEntry {
    pub request_id: String,
    /// `litellm_call_id`: the caller's `x-litellm-call-id`, else one of LiteLLM's own.
    pub call_id: String,
    /// `acompletion` or `aembedding`.
    pub call_type: &'static str,
    /// The virtual key, or its SHA-256 hex (64 hex digits are taken as a hash).
    pub key: String,
    pub model_group: String,
    /// Spend as LiteLLM's JSON would carry it, e.g. `"0.000123"` or `"2"`.
    pub spend: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `2026-11-27T13:34:19.510+00:00`, as LiteLLM writes it.
    pub start_time: String,
    pub status: String,
}

impl SpendEntry {
    pub fn success(
        request_id: &str,
        key: &str,
        model_group: &str,
        spend: &str,
        start_time: &str,
    ) -> Self {
        Self {
            request_id: request_id.to_owned(),
            call_id: format!("call-{request_id}"),
            call_type: "acompletion",
            key: key.to_owned(),
            model_group: model_group.to_owned(),
            spend: spend.to_owned(),
            prompt_tokens: 100,
            completion_tokens: 50,
            start_time: start_time.to_owned(),
            status: "success".to_owned(),
        }
    }
}

fn number(text: &str) -> Value {
    text.parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn add_to(counter: &mut Value, amount: f64) {
    let now = counter.as_f64().unwrap_or(0.0);
    *counter = json!(now + amount);
}

/// Logs `entry` and moves the spend counters of its key and team.
pub(super) fn record(world: &mut World, entry: SpendEntry) {
    let is_hash = entry.key.len() == 64 && entry.key.bytes().all(|b| b.is_ascii_hexdigit());
    let token = if is_hash || world.keys.contains_key(&entry.key) {
        entry.key.clone()
    } else {
        hash(&entry.key)
    };
    let amount: f64 = entry.spend.parse().unwrap_or(0.0);
    let team_id = match world.keys.get_mut(&token) {
        Some(row) => {
            add_to(&mut row["spend"], amount);
            row["team_id"].as_str().unwrap_or_default().to_owned()
        }
        None => String::new(),
    };
    if let Some(team) = world.teams.get_mut(&team_id) {
        add_to(&mut team["spend"], amount);
    }
    let row = json!({
        "request_id": entry.request_id.clone(),
        "call_type": entry.call_type,
        "api_key": token,
        "spend": number(&entry.spend),
        "total_tokens": entry.prompt_tokens + entry.completion_tokens,
        "prompt_tokens": entry.prompt_tokens,
        "completion_tokens": entry.completion_tokens,
        "startTime": entry.start_time,
        "endTime": entry.start_time,
        "model": format!("openai/{}", entry.model_group),
        "model_group": entry.model_group,
        "custom_llm_provider": "openai",
        "user": "",
        "metadata": {
            "status": entry.status,
            "user_api_key": token,
            "user_api_key_team_id": team_id,
            "litellm_call_id": entry.call_id,
            "usage_object": {"total_tokens": entry.prompt_tokens + entry.completion_tokens,
                             "prompt_tokens": entry.prompt_tokens,
                             "completion_tokens": entry.completion_tokens,
                             "prompt_tokens_details": null},
        },
        "team_id": team_id,
        "status": entry.status,
        "request_duration_ms": 47,
        "litellm_call_id": entry.call_id,
    });
    // LiteLLM's spend table is keyed by request id: a repeated response id keeps the first
    // row only, though the counters above count both calls (seen on the real proxy).
    if world.spend_log_ids.insert(entry.request_id) {
        world.spend_logs.push(row);
        world.spend_logs_sorted = false;
    }
}

/// `2026-11-27T13:34:19.510+00:00` → `2026-11-27 13:34:19`, comparable as bytes with the
/// query's `YYYY-MM-DD HH:MM:SS` bounds (everything here is UTC). No allocation: the double
/// serves benchmarks with hundreds of thousands of rows.
fn second_of(start_time: &str) -> [u8; 19] {
    let mut out = [b' '; 19];
    for (slot, byte) in out.iter_mut().zip(start_time.bytes()) {
        *slot = byte;
    }
    out[10] = b' ';
    out
}

pub(super) async fn spend_logs_v2(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let (Some(start), Some(end)) = (query.get("start_date"), query.get("end_date")) else {
        return error(
            400,
            "bad_request_error",
            "start_date and end_date are required",
        );
    };
    let page: usize = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page_size: usize = query
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50);
    if !(1..=1000).contains(&page_size) {
        return error(
            422,
            "bad_request_error",
            "page_size must be between 1 and 1000",
        );
    }
    let mut world = shared.world.lock().unwrap();
    if !world.spend_logs_sorted {
        let key = |r: &Value| {
            (
                r["startTime"].as_str().unwrap_or_default().to_owned(),
                r["request_id"].as_str().unwrap_or_default().to_owned(),
            )
        };
        world.spend_logs.sort_by_key(key);
        world.spend_logs_sorted = true;
    }
    // Sorted by start time, so the window is a slice found by binary search.
    let at = |row: &Value| second_of(row["startTime"].as_str().unwrap_or_default());
    let low = world
        .spend_logs
        .partition_point(|row| at(row).as_slice() < start.as_bytes());
    let high = world
        .spend_logs
        .partition_point(|row| at(row).as_slice() <= end.as_bytes());
    let rows: Vec<&Value> = world.spend_logs[low..high.max(low)].iter().collect();
    let total = rows.len();
    let data: Vec<&Value> = rows
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .collect();
    Json(json!({
        "data": data,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": total.div_ceil(page_size),
        "total_is_capped": false,
    }))
    .into_response()
}
