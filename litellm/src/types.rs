//! The shapes of LiteLLM's management API that we send and read.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The state a LiteLLM team should have. Every field is sent on update, so `None` clears
/// (`/team/update` keeps absent fields and clears nulls).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamSpec {
    pub team_id: String,
    pub team_alias: String,
    pub models: Vec<String>,
    /// USD, LiteLLM's float. `None` = no hard budget.
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub blocked: bool,
}

/// What LiteLLM reports for a team (`/team/info` → `team_info`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TeamInfo {
    pub team_id: String,
    #[serde(default)]
    pub team_alias: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub max_budget: Option<f64>,
    #[serde(default)]
    pub soft_budget: Option<f64>,
    #[serde(default)]
    pub rpm_limit: Option<u64>,
    #[serde(default)]
    pub tpm_limit: Option<u64>,
    #[serde(default)]
    pub blocked: bool,
    /// LiteLLM's spend counter, digits as sent (it is a float in LiteLLM).
    #[serde(default)]
    pub spend: Option<serde_json::Number>,
    /// The team's keys, as `/team/info` lists them beside the team (`keys`).
    #[serde(skip)]
    pub keys: Vec<ListedKey>,
}

/// A key as `/team/info` lists it: enough to tell whether one of ours is there and blocked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListedKey {
    /// The key's SHA-256, hex.
    pub token: String,
    #[serde(default)]
    pub blocked: Option<bool>,
}

impl ListedKey {
    pub fn is_blocked(&self) -> bool {
        self.blocked.unwrap_or(false)
    }
}

impl TeamInfo {
    /// The listed key with this hash, if the team has it.
    pub fn key(&self, key_hash: &str) -> Option<&ListedKey> {
        self.keys.iter().find(|k| k.token == key_hash)
    }

    /// Whether LiteLLM already holds `spec` (model order does not matter).
    pub fn matches(&self, spec: &TeamSpec) -> bool {
        let mut have = self.models.clone();
        let mut want = spec.models.clone();
        have.sort();
        want.sort();
        have == want
            && self.team_alias.as_deref() == Some(spec.team_alias.as_str())
            && self.max_budget == spec.max_budget
            && self.soft_budget == spec.soft_budget
            && self.rpm_limit == spec.rpm_limit
            && self.tpm_limit == spec.tpm_limit
            && self.blocked == spec.blocked
    }
}

/// A virtual key to create in LiteLLM: our own key, passed as LiteLLM's custom `key`, so a retry
/// cannot mint a second key. Debug never shows the key.
#[derive(Clone)]
pub struct KeySpec {
    pub key: SecretString,
    pub team_id: String,
    /// Our fingerprint, stored in the key's metadata so drift repair can recognise it.
    pub fingerprint: String,
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySpec")
            .field("team_id", &self.team_id)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeySpec {
    pub(crate) fn expose(&self) -> &str {
        self.key.expose_secret()
    }
}

/// What LiteLLM reports for a key (`/key/info` → `info`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KeyInfo {
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub blocked: Option<bool>,
    #[serde(default)]
    pub models: Vec<String>,
    /// LiteLLM's spend counter, digits as sent (it is a float in LiteLLM).
    #[serde(default)]
    pub spend: Option<serde_json::Number>,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

impl KeyInfo {
    pub fn is_blocked(&self) -> bool {
        self.blocked.unwrap_or(false)
    }
}

/// One page of `GET /spend/logs/v2`.
#[derive(Debug, Clone, Deserialize)]
pub struct SpendLogPage {
    #[serde(default, deserialize_with = "rows")]
    pub data: Vec<SpendLogRow>,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub page: u64,
    #[serde(default)]
    pub total_pages: u64,
}

/// The fields of a `/spend/logs/v2` row that we read, as JSON (callers pick what they trust).
/// The rest of a row (the request and response bodies, and the copy of the model's price entry
/// LiteLLM keeps in its metadata: most of a real row's 10 KB) is skipped while a page is parsed,
/// so a page costs little more than its text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SpendLogRow {
    pub request_id: serde_json::Value,
    pub api_key: serde_json::Value,
    pub spend: serde_json::Value,
    pub prompt_tokens: serde_json::Value,
    pub completion_tokens: serde_json::Value,
    #[serde(rename = "startTime")]
    pub start_time: serde_json::Value,
    pub model: serde_json::Value,
    pub model_group: serde_json::Value,
    pub team_id: serde_json::Value,
    pub status: serde_json::Value,
    pub request_duration_ms: serde_json::Value,
    pub litellm_call_id: serde_json::Value,
    #[serde(deserialize_with = "object_or_none")]
    pub metadata: Option<SpendLogMetadata>,
}

/// The part of a spend-log row's `metadata` that we read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SpendLogMetadata {
    pub litellm_call_id: serde_json::Value,
    pub status: serde_json::Value,
    pub user_api_key_team_id: serde_json::Value,
    /// `{"prompt_tokens_details": {"cached_tokens": n}}`, among others.
    pub usage_object: serde_json::Value,
    #[serde(deserialize_with = "object_or_none")]
    pub spend_logs_metadata: Option<JobTag>,
    #[serde(deserialize_with = "object_or_none")]
    pub requester_metadata: Option<JobTag>,
}

/// A nested object we read, or `None` for anything else in its place (null, a string, a
/// list): one odd row must not make its whole page unreadable.
fn object_or_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape<T> {
        Object(T),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Shape::<T>::deserialize(deserializer)? {
        Shape::Object(value) => Some(value),
        Shape::Other(_) => None,
    })
}

/// A page's rows, where an element that is not an object (null, a number, a list) reads as
/// an empty row, which ingestion refuses and counts as unreadable: one odd element must not
/// make its page, and so every row after it, unreadable. `data: null` is no rows.
fn rows<'de, D>(deserializer: D) -> Result<Vec<SpendLogRow>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer};

    struct Row(SpendLogRow);
    impl<'de> Deserialize<'de> for Row {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Shape;
            impl<'de> Visitor<'de> for Shape {
                type Value = SpendLogRow;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a spend-log row")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SpendLogRow, A::Error> {
                    SpendLogRow::deserialize(MapAccessDeserializer::new(map))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpendLogRow, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(SpendLogRow::default())
                }
                fn visit_unit<E>(self) -> Result<SpendLogRow, E> {
                    Ok(SpendLogRow::default())
                }
                fn visit_bool<E>(self, _: bool) -> Result<SpendLogRow, E> {
                    Ok(SpendLogRow::default())
                }
                fn visit_i64<E>(self, _: i64) -> Result<SpendLogRow, E> {
                    Ok(SpendLogRow::default())
                }
                fn visit_u64<E>(self, _: u64) -> Result<SpendLogRow, E> {
                    Ok(SpendLogRow::default())
                }
                fn visit_f64<E>(self, _: f64) -> Result<SpendLogRow, E> {
                    Ok(SpendLogRow::default())
                }
                fn visit_str<E>(self, _: &str) -> Result<SpendLogRow, E> {
                    Ok(SpendLogRow::default())
                }
            }
            deserializer.deserialize_any(Shape).map(Row)
        }
    }

    let rows = Option::<Vec<Row>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(rows.into_iter().map(|Row(row)| row).collect())
}

/// A client's metadata, of which we read only the job it tags the call with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobTag {
    pub job_id: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_of_a_page_that_is_not_a_row_leaves_the_other_rows_readable() {
        let text = r#"{"data": [{"request_id": "r1", "spend": 0.5}, null, 7, "row", [1, {"a": 2}],
                                 true, {"request_id": "r2", "metadata": "odd"}],
                       "total": 7, "page": 1, "total_pages": 1}"#;
        let page: SpendLogPage = serde_json::from_str(text).expect("the page is readable");
        assert_eq!(page.data.len(), 7);
        assert_eq!(page.data[0].request_id, "r1");
        assert_eq!(page.data[0].spend, 0.5);
        assert_eq!(page.data[6].request_id, "r2");
        assert!(page.data[6].metadata.is_none());
        // The odd ones read as rows without an id, which ingestion counts as unreadable.
        assert!(page.data[1..6].iter().all(|row| row.request_id.is_null()));
        assert_eq!(page.total, 7);

        let empty: SpendLogPage = serde_json::from_str(r#"{"data": null}"#).unwrap();
        assert!(empty.data.is_empty());
    }
}
