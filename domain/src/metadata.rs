//! Who did what, when, and as part of which request: attached to every event a command writes.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMetadata {
    /// Who issued the command, e.g. `admin` (master key) or `system:litellm-sync`.
    pub actor: String,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub time: DateTime<Utc>,
}

impl CommandMetadata {
    pub fn new(actor: impl Into<String>, time: DateTime<Utc>) -> Self {
        Self {
            actor: actor.into(),
            request_id: None,
            correlation_id: None,
            idempotency_key: None,
            time,
        }
    }

    /// The shape cqrs-es stores in the `metadata` column.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::with_capacity(5);
        map.insert("actor".into(), self.actor.clone());
        map.insert(
            "time".into(),
            self.time.to_rfc3339_opts(SecondsFormat::Micros, true),
        );
        let optional = [
            ("request_id", &self.request_id),
            ("correlation_id", &self.correlation_id),
            ("idempotency_key", &self.idempotency_key),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.into(), value.clone());
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_left_out_when_absent() {
        let time = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut meta = CommandMetadata::new("admin", time);
        meta.request_id = Some("req-1".into());
        let map = meta.to_map();
        assert_eq!(map["actor"], "admin");
        assert_eq!(map["request_id"], "req-1");
        assert_eq!(map["time"], "2026-11-27T10:00:00.000000Z");
        assert!(!map.contains_key("correlation_id"));
    }
}
