//! LiteLLM's two shapes of a logged request, read into our `Incoming`: a `/spend/logs/v2` row
//! and a `generic_api` push item (`StandardLoggingPayload`). Costs are read from the JSON
//! number's own digits (serde_json keeps them), never through f64.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use domain::usage::{UsageInput, UsageSource, UsageStatus};
use litellm::{SpendLogMetadata, SpendLogRow};
use rust_decimal::Decimal;
use serde_json::Value;

use super::call_ids::{CallIds, Identity};
use super::ledger::Incoming;

/// Why a row cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError(pub &'static str);

fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(string)
}

fn count(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// A JSON number (or numeric string) as an exact decimal.
pub fn decimal(value: &Value) -> Option<Decimal> {
    let raw = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Null => return Some(Decimal::ZERO),
        _ => return None,
    };
    Decimal::from_str(&raw)
        .or_else(|_| Decimal::from_scientific(&raw))
        .ok()
}

/// LiteLLM's key hash: 64 hex digits.
fn key_hash(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok().filter(|hash| hash.len() == 32)
}

fn status(raw: Option<&str>) -> UsageStatus {
    match raw {
        Some("failure") => UsageStatus::Failure,
        _ => UsageStatus::Success,
    }
}

fn timestamp(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn job_id(metadata: &Value) -> Option<String> {
    ["spend_logs_metadata", "requester_metadata"]
        .iter()
        .find_map(|field| text(&metadata[*field], "job_id"))
        .map(str::to_owned)
}

fn cached_tokens(usage: &Value) -> u64 {
    usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0)
}

/// The request id to record and, for a direct call, the call id the ledger adds to it.
fn split(identity: Identity) -> (String, Option<String>) {
    match identity {
        Identity::Ours(call_id) => (call_id, None),
        Identity::Direct {
            request_id,
            call_id,
        } => (request_id, call_id),
    }
}

/// A JSON string, if it is one and not empty.
fn string(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}

/// A `/spend/logs/v2` row. Its identity is our call id when the row is of a gateway call,
/// else LiteLLM's `request_id` with its call id (see `call_ids`).
pub fn from_spend_log(row: &SpendLogRow, ids: &CallIds) -> Result<Incoming, RowError> {
    let request_id = string(&row.request_id).ok_or(RowError("request_id missing"))?;
    let none = SpendLogMetadata::default();
    let metadata = row.metadata.as_ref().unwrap_or(&none);
    let occurred_at = string(&row.start_time)
        .and_then(timestamp)
        .ok_or(RowError("startTime missing or unreadable"))?;
    let call_id = string(&row.litellm_call_id).or_else(|| string(&metadata.litellm_call_id));
    let (request_id, call_id) = split(ids.identity(call_id, request_id, occurred_at));
    let provider_cost = decimal(&row.spend).ok_or(RowError("spend is not a number"))?;
    let prompt_tokens = row.prompt_tokens.as_u64().unwrap_or(0);
    let job_id = [&metadata.spend_logs_metadata, &metadata.requester_metadata]
        .into_iter()
        .find_map(|tag| tag.as_ref().and_then(|tag| string(&tag.job_id)))
        .map(str::to_owned);
    let input = UsageInput {
        request_id,
        model: string(&row.model_group)
            .or_else(|| string(&row.model))
            .unwrap_or("unknown")
            .to_owned(),
        provider_model: string(&row.model).map(str::to_owned),
        prompt_tokens,
        completion_tokens: row.completion_tokens.as_u64().unwrap_or(0),
        cached_tokens: cached_tokens(&metadata.usage_object).min(prompt_tokens),
        provider_cost,
        status: status(string(&row.status).or_else(|| string(&metadata.status))),
        latency_ms: row.request_duration_ms.as_u64(),
        occurred_at,
        job_id,
        source: UsageSource::SpendLogs,
    };
    Ok(Incoming {
        input,
        key_hash: string(&row.api_key).and_then(key_hash),
        call_id,
        team_id: string(&row.team_id)
            .or_else(|| string(&metadata.user_api_key_team_id))
            .map(str::to_owned),
    })
}

/// A `generic_api` push item (`StandardLoggingPayload`), identified as a spend log row is.
pub fn from_push(item: &Value, ids: &CallIds) -> Result<Incoming, RowError> {
    let request_id = text(item, "id").ok_or(RowError("id missing"))?;
    let metadata = &item["metadata"];
    let start = item["startTime"]
        .as_f64()
        .ok_or(RowError("startTime missing"))?;
    let occurred_at = Utc
        .timestamp_micros((start * 1_000_000.0) as i64)
        .single()
        .ok_or(RowError("startTime out of range"))?;
    let (request_id, call_id) =
        split(ids.identity(text(item, "litellm_call_id"), request_id, occurred_at));
    let latency_ms = item["endTime"]
        .as_f64()
        .filter(|end| *end >= start)
        .map(|end| ((end - start) * 1000.0).round() as u64);
    let provider_cost =
        decimal(&item["response_cost"]).ok_or(RowError("response_cost is not a number"))?;
    let prompt_tokens = count(item, "prompt_tokens");
    let input = UsageInput {
        request_id,
        model: text(item, "model_group")
            .or_else(|| text(item, "model"))
            .unwrap_or("unknown")
            .to_owned(),
        provider_model: text(item, "model").map(str::to_owned),
        prompt_tokens,
        completion_tokens: count(item, "completion_tokens"),
        cached_tokens: cached_tokens(&item["response"]["usage"]).min(prompt_tokens),
        provider_cost,
        status: status(text(item, "status")),
        latency_ms,
        occurred_at,
        job_id: job_id(metadata),
        source: UsageSource::Push,
    };
    Ok(Incoming {
        input,
        key_hash: text(metadata, "user_api_key_hash").and_then(key_hash),
        call_id,
        team_id: text(metadata, "user_api_key_team_id").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> CallIds {
        CallIds::new([3; 32], None)
    }

    /// A row as a page's parse reads it.
    fn spend_row(value: Value) -> SpendLogRow {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_spend_log_row_is_read_exactly() {
        let row: SpendLogRow = serde_json::from_str(
            r#"{"request_id": "chatcmpl-7b254c0dbd1c", "api_key": "eac505cceb246e39f7e5d3fb36a6cf118876a38f997b721a1789f6a6603d1dee",
                "spend": 3.5e-05, "prompt_tokens": 1000, "completion_tokens": 500,
                "startTime": "2026-11-27T13:34:19.510+00:00", "model": "openai/fake-gpt", "model_group": "fake-gpt",
                "team_id": "196afeb3", "status": "success", "request_duration_ms": 47,
                "metadata": {"usage_object": {"prompt_tokens_details": {"cached_tokens": 200}}}}"#,
        )
        .unwrap();
        let incoming = from_spend_log(&row, &ids()).unwrap();
        assert_eq!(
            incoming.input.provider_cost,
            Decimal::from_str("0.000035").unwrap()
        );
        assert_eq!(incoming.input.model, "fake-gpt");
        assert_eq!(
            incoming.input.provider_model.as_deref(),
            Some("openai/fake-gpt")
        );
        assert_eq!(incoming.input.cached_tokens, 200);
        assert_eq!(incoming.input.latency_ms, Some(47));
        assert_eq!(incoming.key_hash.as_ref().map(Vec::len), Some(32));
        assert_eq!(incoming.team_id.as_deref(), Some("196afeb3"));
        assert_eq!(
            incoming.input.occurred_at.to_rfc3339(),
            "2026-11-27T13:34:19.510+00:00"
        );
    }

    #[test]
    fn a_push_item_is_read() {
        let item = json!({"id": "chatcmpl-1", "status": "failure", "response_cost": 0,
            "prompt_tokens": 3, "completion_tokens": 0, "model": "openai/fake-gpt", "model_group": "fake-gpt",
            "startTime": 1_795_000_000.25, "endTime": 1_795_000_000.5,
            "metadata": {"user_api_key_team_id": "t-1", "requester_metadata": {"job_id": "job-9"}}});
        let incoming = from_push(&item, &ids()).unwrap();
        assert_eq!(incoming.input.status, UsageStatus::Failure);
        assert_eq!(incoming.input.latency_ms, Some(250));
        assert_eq!(incoming.input.job_id.as_deref(), Some("job-9"));
        assert_eq!(incoming.team_id.as_deref(), Some("t-1"));
        assert!(incoming.key_hash.is_none());
    }

    /// LiteLLM's metadata is free-form JSON: a row whose metadata, or a part of it, is not the
    /// object we expect is still read from its own fields.
    #[test]
    fn a_row_with_metadata_of_another_shape_is_still_read() {
        let base = json!({"request_id": "r-1", "spend": "0.25", "startTime": "2026-11-27T13:34:19+00:00",
                          "team_id": "t-1", "prompt_tokens": 7});
        for metadata in [
            json!("a string"),
            json!(null),
            json!([1, 2]),
            json!({"requester_metadata": "job-1", "spend_logs_metadata": [1], "usage_object": null}),
            json!({"model_map_information": {"model_map_value": {"input_cost_per_token": 1e-6}},
                   "requester_metadata": {"job_id": "job-2", "tags": ["a"]}}),
        ] {
            let mut row = base.clone();
            row["metadata"] = metadata.clone();
            let incoming = from_spend_log(&spend_row(row), &ids()).unwrap();
            assert_eq!(incoming.input.request_id, "r-1", "{metadata}");
            assert_eq!(incoming.input.prompt_tokens, 7, "{metadata}");
            assert_eq!(incoming.team_id.as_deref(), Some("t-1"), "{metadata}");
            let job = metadata["requester_metadata"]["job_id"].as_str();
            assert_eq!(incoming.input.job_id.as_deref(), job, "{metadata}");
        }
    }

    #[test]
    fn rows_without_identity_or_cost_are_refused() {
        assert!(
            from_spend_log(
                &spend_row(json!({"startTime": "2026-11-27T13:34:19+00:00"})),
                &ids()
            )
            .is_err()
        );
        assert!(
            from_spend_log(&spend_row(json!({"request_id": "r", "startTime": "2026-11-27T13:34:19+00:00", "spend": "lots"})), &ids())
                .is_err()
        );
        assert!(from_push(&json!({"id": "x"}), &ids()).is_err());
    }

    /// A row of a gateway call is known by the call id we sent, wherever LiteLLM put it; a row
    /// whose call id a client chose keeps LiteLLM's request id.
    #[test]
    fn a_row_is_identified_by_our_call_id_only_when_it_is_ours() {
        let started = Utc.timestamp_opt(1_795_000_000, 0).unwrap();
        let ours = ids().issue(started);
        let row = |call_id: &str| {
            spend_row(
                json!({"request_id": "chatcmpl-reused", "spend": 0.5, "startTime": "2026-11-18T11:06:40+00:00",
                   "litellm_call_id": call_id, "metadata": {"litellm_call_id": call_id}}),
            )
        };
        let gateway = from_spend_log(&row(&ours), &ids()).unwrap();
        assert_eq!(gateway.input.request_id, ours);
        assert_eq!(gateway.call_id, None);
        let direct = from_spend_log(&row("client-chosen"), &ids()).unwrap();
        assert_eq!(direct.input.request_id, "chatcmpl-reused");
        assert_eq!(direct.call_id.as_deref(), Some("client-chosen"));
        let only_in_metadata = spend_row(json!({"request_id": "chatcmpl-reused", "spend": 0.5,
            "startTime": "2026-11-18T11:06:40+00:00", "metadata": {"litellm_call_id": ours}}));
        assert_eq!(
            from_spend_log(&only_in_metadata, &ids())
                .unwrap()
                .input
                .request_id,
            ours
        );
        let push = |call_id: &str| {
            json!({"id": "chatcmpl-reused", "litellm_call_id": call_id, "response_cost": 0.5,
                   "startTime": 1_795_000_000.0, "endTime": 1_795_000_001.0, "metadata": {}})
        };
        assert_eq!(
            from_push(&push(&ours), &ids()).unwrap().input.request_id,
            ours
        );
        let direct = from_push(&push("client-chosen"), &ids()).unwrap();
        assert_eq!(direct.input.request_id, "chatcmpl-reused");
        assert_eq!(direct.call_id.as_deref(), Some("client-chosen"));
    }
}
