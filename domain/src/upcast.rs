//! Event schema evolution. Stored events are never rewritten (the log is append-only and
//! hash-chained), so when an event's shape changes its `event_version` goes up and an upcaster
//! turns older payloads into the new shape as they are read. Both readers use the same list:
//! the command side (cqrs-es, through `for_cqrs`) and the projections' log reader (`upcast`).
//!
//! To change an event's shape:
//! 1. change the Rust type and raise the version its `DomainEvent::event_version` reports;
//! 2. add an `Upcaster` below from every older version to the new shape (a pure function on the
//!    JSON payload, `{"Variant": {...}}`);
//! 3. keep a test that decodes a payload exactly as the old version stored it.
//!
//! Example (the only one so far): `UsageRecorded` 1.0 named its budget hold `hold_key` (one
//! hold per request); when holds became leases shared by many requests, 2.0 made it
//! `hold: {key, amount}`, with the part of the hold the request took.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::{Map, Value};

/// Turns payloads of `event_type` stored at a version below `below` into that version's shape.
pub struct Upcaster {
    pub event_type: &'static str,
    pub below: &'static str,
    pub upcast: fn(Value) -> Value,
}

pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "UsageRecorded",
    below: "2.0",
    upcast: usage_recorded_hold_part,
}];

/// The payload in its current shape.
pub fn upcast(event_type: &str, event_version: &str, mut payload: Value) -> Value {
    for upcaster in UPCASTERS {
        if upcaster.event_type == event_type && older(event_version, upcaster.below) {
            payload = (upcaster.upcast)(payload);
        }
    }
    payload
}

/// Whether a payload stored at `event_version` is older than its event's current shape.
pub fn needs_upcast(event_type: &str, event_version: &str) -> bool {
    UPCASTERS
        .iter()
        .any(|u| u.event_type == event_type && older(event_version, u.below))
}

/// The same upcasters for cqrs-es's event stores.
pub fn for_cqrs() -> Vec<Box<dyn EventUpcaster>> {
    UPCASTERS
        .iter()
        .map(|u| {
            let f = u.upcast;
            Box::new(SemanticVersionEventUpcaster::new(
                u.event_type,
                u.below,
                Box::new(f),
            )) as Box<dyn EventUpcaster>
        })
        .collect()
}

/// `major.minor[.patch]` compared numerically; an unreadable version counts as oldest.
fn older(version: &str, than: &str) -> bool {
    fn parts(v: &str) -> Vec<u64> {
        v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
    }
    parts(version) < parts(than)
}

/// `UsageRecorded` 1.0 -> 2.0: `hold_key` (and the short-lived `hold_amount`) become
/// `hold: {key, amount}`.
fn usage_recorded_hold_part(mut payload: Value) -> Value {
    if let Some(record) = payload
        .get_mut("UsageRecorded")
        .and_then(Value::as_object_mut)
    {
        let key = record.remove("hold_key");
        let amount = record.remove("hold_amount").unwrap_or(Value::Null);
        if let Some(key @ Value::String(_)) = key {
            let mut hold = Map::new();
            hold.insert("key".into(), key);
            hold.insert("amount".into(), amount);
            record.insert("hold".into(), Value::Object(hold));
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{UsageEvent, UsageRecord};

    /// A `UsageRecorded` exactly as version 1.0 stored it.
    fn v1(extra: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"UsageRecorded": {{"request_id": "chatcmpl-1", "team_id": "team_a",
                "organization_id": "org_a", "key_fingerprint": "fp", "model": "gpt-4o",
                "provider_model": null, "prompt_tokens": 12, "completion_tokens": 20,
                "cached_tokens": 0, "provider_cost": "0.0052", "markup_percent": "25",
                "price": "0.0065", "status": "success", "latency_ms": 80,
                "occurred_at": "2026-11-27T10:00:00Z", "job_id": null, "source": "gateway"{extra}}}}}"#
        ))
        .unwrap()
    }

    fn decode(payload: Value) -> UsageRecord {
        let UsageEvent::UsageRecorded(record) = serde_json::from_value(payload).unwrap();
        record
    }

    #[test]
    fn a_version_1_hold_becomes_a_whole_hold_part() {
        let record = decode(upcast(
            "UsageRecorded",
            "1.0",
            v1(r#", "hold_key": "req-9""#),
        ));
        let hold = record.hold.expect("the hold is kept");
        assert_eq!(hold.key, "req-9");
        assert_eq!(hold.amount, None);
    }

    #[test]
    fn a_version_1_part_keeps_its_amount() {
        let payload = v1(r#", "hold_key": "lease-1", "hold_amount": "0.04""#);
        let record = decode(upcast("UsageRecorded", "1.0", payload));
        assert_eq!(
            record
                .hold
                .unwrap()
                .amount
                .unwrap()
                .as_decimal()
                .to_string(),
            "0.04"
        );
    }

    #[test]
    fn records_without_a_hold_and_current_versions_pass_unchanged() {
        assert_eq!(decode(upcast("UsageRecorded", "1.0", v1(""))).hold, None);
        let current = v1(r#", "hold": {"key": "k", "amount": null}"#);
        assert_eq!(upcast("UsageRecorded", "2.0", current.clone()), current);
        // Without the upcaster a 1.0 hold would be silently dropped: the field is unknown.
        assert_eq!(decode(v1(r#", "hold_key": "req-9""#)).hold, None);
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(older("1.0", "2.0"));
        assert!(older("1.9", "1.10"));
        assert!(!older("2.0", "2.0"));
        assert!(!older("10.0", "2.0"));
    }
}
