//! The call id saas-api sends LiteLLM (`x-litellm-call-id`) with every gateway call, signed, so
//! that LiteLLM's row of that call and our own record of it are one usage record, while a call
//! id a client sets itself on a direct call to LiteLLM identifies nothing.
//!
//! Why signed: LiteLLM takes any caller's `x-litellm-call-id` as is (up to 256 characters, seen
//! on 1.108.7 and in its `resolve_litellm_call_id`). If every row's call id were its identity, a
//! client calling LiteLLM directly with the same call id every time would be billed once. So a
//! row's identity is its call id only when that id carries our tag and the row started within
//! the id's lifetime; any other row keeps LiteLLM's `request_id` (the provider's response id),
//! as before. Our ids never reach a team's client (the gateway forwards none of LiteLLM's
//! headers), and the lifetime bounds what a leaked one is worth.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "saas1";
/// How long before and after its issue a row may start and still be the call it names
/// (LiteLLM stamps a row with the request's start, moments after we issue the id; the slack
/// covers clock differences between the two hosts).
const EARLIEST_SECS: i64 = 5 * 60;
const LATEST_SECS: i64 = 15 * 60;
const TAG_BYTES: usize = 16;

/// Issues and recognises gateway call ids. Keys come from `ENCRYPTION_KEY` (and, during a
/// rotation, `ENCRYPTION_KEY_OLD`), so every instance agrees without storing anything.
#[derive(Clone)]
pub struct CallIds {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for CallIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallIds(..)")
    }
}

impl CallIds {
    /// `current` signs; `current` and `previous` both verify.
    pub fn new(current: [u8; 32], previous: Option<[u8; 32]>) -> Self {
        Self {
            keys: std::iter::once(current).chain(previous).collect(),
        }
    }

    /// A fresh call id for a request starting now.
    pub fn issue(&self, now: DateTime<Utc>) -> String {
        let body = format!(
            "{PREFIX}-{:x}-{}",
            now.timestamp().max(0),
            uuid::Uuid::new_v4().simple()
        );
        let tag = tag(&self.keys[0], &body);
        format!("{body}-{tag}")
    }

    /// Whether `call_id` is one we issued, for a row that started at `started`.
    pub fn is_ours(&self, call_id: &str, started: DateTime<Utc>) -> bool {
        let Some((body, given)) = call_id.rsplit_once('-') else {
            return false;
        };
        let mut parts = body.split('-');
        let (Some(PREFIX), Some(issued), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(issued) = i64::from_str_radix(issued, 16) else {
            return false;
        };
        let age = started.timestamp() - issued;
        if !(-EARLIEST_SECS..=LATEST_SECS).contains(&age) {
            return false;
        }
        // Compared through the MAC's own constant-time check, not as strings.
        let Some(given) = hex::decode(given).ok().filter(|tag| tag.len() == TAG_BYTES) else {
            return false;
        };
        self.keys.iter().any(|key| {
            let mut mac = keyed(key);
            mac.update(body.as_bytes());
            mac.verify_truncated_left(&given).is_ok()
        })
    }

    /// How a row LiteLLM logged is identified: by our call id when it is ours, else by
    /// LiteLLM's `request_id` together with whatever call id the caller or LiteLLM gave it.
    pub fn identity(
        &self,
        call_id: Option<&str>,
        request_id: &str,
        started: DateTime<Utc>,
    ) -> Identity {
        match call_id {
            Some(id) if self.is_ours(id, started) => Identity::Ours(id.to_owned()),
            _ => Identity::Direct {
                request_id: request_id.to_owned(),
                call_id: call_id.map(str::to_owned),
            },
        }
    }
}

/// What names a logged call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A gateway call: the call id we issued.
    Ours(String),
    /// A call made straight to LiteLLM: its request id and call id, neither unique alone (a
    /// provider may repeat response ids; a client chooses its call ids). See `direct_record_id`.
    Direct {
        request_id: String,
        call_id: Option<String>,
    },
}

/// The record id of a direct call: the response id and a digest of the call id (a client may
/// send up to 256 characters of anything; the digest keeps the id short and printable).
pub fn direct_record_id(request_id: &str, call_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(call_id.as_bytes());
    format!("{request_id}~{}", hex::encode(&digest[..8]))
}

fn keyed(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"saas-litellm call ids v1\n");
    mac
}

fn tag(key: &[u8; 32], body: &str) -> String {
    let mut mac = keyed(key);
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bytes[..TAG_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn ids() -> CallIds {
        CallIds::new([7; 32], None)
    }

    #[test]
    fn an_issued_id_is_ours_for_a_row_started_in_its_lifetime() {
        let now = Utc::now();
        let id = ids().issue(now);
        assert!(
            id.len() <= 256,
            "LiteLLM ignores call ids over 256 characters"
        );
        assert!(ids().is_ours(&id, now));
        assert!(ids().is_ours(&id, now + Duration::minutes(14)));
        assert!(!ids().is_ours(&id, now + Duration::minutes(16)));
        assert!(!ids().is_ours(&id, now - Duration::minutes(6)));
        assert_eq!(
            ids().identity(Some(&id), "chatcmpl-1", now),
            Identity::Ours(id)
        );
    }

    #[test]
    fn a_client_chosen_or_altered_id_is_not_ours() {
        let now = Utc::now();
        let id = ids().issue(now);
        let other_key = CallIds::new([8; 32], None);
        assert!(!other_key.is_ours(&id, now));
        let mut altered = id.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        for forged in [
            "my-call-id",
            "saas1-0-0-0",
            &altered,
            &id[..id.len() - 2],
            &format!("{id}00"),
        ] {
            assert!(!ids().is_ours(forged, now), "{forged} passed");
            assert!(matches!(
                ids().identity(Some(forged), "chatcmpl-1", now),
                Identity::Direct { call_id: Some(c), .. } if c == forged
            ));
        }
        assert!(matches!(
            ids().identity(None, "chatcmpl-1", now),
            Identity::Direct { call_id: None, .. }
        ));
    }

    #[test]
    fn a_direct_record_id_is_short_whatever_call_id_a_client_sends() {
        let long = "\u{1}".repeat(256);
        let id = direct_record_id("chatcmpl-1", &long);
        assert_eq!(id.len(), "chatcmpl-1".len() + 17);
        assert!(id.chars().all(|c| c.is_ascii_graphic()));
        assert_ne!(id, direct_record_id("chatcmpl-1", "other"));
    }

    #[test]
    fn ids_issued_before_a_key_rotation_still_verify_with_the_old_key_configured() {
        let now = Utc::now();
        let before = ids().issue(now);
        let rotated = CallIds::new([9; 32], Some([7; 32]));
        assert!(rotated.is_ours(&before, now));
        assert!(rotated.is_ours(&rotated.issue(now), now));
        assert!(!CallIds::new([9; 32], None).is_ours(&before, now));
    }
}
