//! The JSON shapes a usage bucket takes in reports, shared by the live usage report and the
//! audit's as-of answer so the two cannot drift apart.

use projections::reports::UsageBucket;
use serde_json::{Map, Value, json};

use crate::extract::decimal_json;

pub fn totals_json(bucket: &UsageBucket) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("total_spend".into(), decimal_json(bucket.price));
    map.insert("provider_cost".into(), decimal_json(bucket.provider_cost));
    map.insert("request_count".into(), json!(bucket.requests));
    map.insert("failed_requests".into(), json!(bucket.failed_requests));
    map.insert("total_tokens".into(), json!(bucket.total_tokens()));
    map.insert("prompt_tokens".into(), json!(bucket.prompt_tokens));
    map.insert("completion_tokens".into(), json!(bucket.completion_tokens));
    map.insert("cached_tokens".into(), json!(bucket.cached_tokens));
    map
}

pub fn model_json(bucket: &UsageBucket) -> Value {
    json!({
        "requests": bucket.requests,
        "cost": decimal_json(bucket.price),
        "provider_cost": decimal_json(bucket.provider_cost),
        "tokens": bucket.total_tokens(),
        "prompt_tokens": bucket.prompt_tokens,
        "completion_tokens": bucket.completion_tokens,
        "cached_tokens": bucket.cached_tokens,
    })
}
