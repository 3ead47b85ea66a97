//! Why a LiteLLM call failed, told apart by `error.type` first and the status second.

use thiserror::Error;

/// What went wrong talking to LiteLLM. Messages never contain keys: LiteLLM itself masks them
/// (`sk-...Cm9Q`) and our client never formats a key into an error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LitellmError {
    #[error("LiteLLM is unreachable: {0}")]
    Unreachable(String),
    #[error("LiteLLM did not answer in time")]
    Timeout,
    #[error("LiteLLM refused our credentials: {0}")]
    Unauthorized(String),
    #[error("not found in LiteLLM: {0}")]
    NotFound(String),
    #[error("LiteLLM rejected the request ({kind}): {message}")]
    Rejected { kind: String, message: String },
    #[error("LiteLLM failed with {status} ({kind}): {message}")]
    Server {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("LiteLLM answered something we cannot read: {0}")]
    Garbage(String),
}

impl LitellmError {
    /// Worth retrying later (as opposed to a request that will fail the same way again).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Timeout | Self::Server { .. } | Self::Garbage(_)
        )
    }

    /// Classifies an error answer from its status and body.
    pub fn from_response(status: u16, body: &str) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let (kind, message) = match &parsed {
            Some(value) if value.get("error").is_some_and(|e| e.is_object()) => {
                let error = &value["error"];
                (
                    error["type"].as_str().unwrap_or("").to_owned(),
                    error["message"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| error.to_string()),
                )
            }
            Some(value) if value.get("detail").is_some() => {
                ("detail".to_owned(), detail_message(&value["detail"]))
            }
            Some(value) => (String::new(), value.to_string()),
            None => (String::new(), body.chars().take(200).collect()),
        };
        if parsed.is_none() && status < 500 {
            return Self::Garbage(format!("status {status}, body is not JSON"));
        }
        match (kind.as_str(), status) {
            ("not_found_error", _) | (_, 404) => Self::NotFound(message),
            (_, 401) | (_, 403) => Self::Unauthorized(message),
            (_, 500..) => Self::Server {
                status,
                kind,
                message,
            },
            _ => Self::Rejected { kind, message },
        }
    }
}

fn detail_message(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => map
            .get("error")
            .and_then(|e| e.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| detail.to_string()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_error_bodies_are_classified() {
        let cases = [
            (
                404,
                r#"{"error": {"message": "Key not found.", "type": "not_found_error", "param": "key", "code": "404"}}"#,
                "NotFound",
            ),
            (
                404,
                r#"{"error": {"message": "{'error': 'Team not found, passed team_id=x'}", "type": "internal_server_error", "param": null, "code": "404"}}"#,
                "NotFound",
            ),
            (
                404,
                r#"{"detail": {"error": "Team not found, passed team_id=no-such-team"}}"#,
                "NotFound",
            ),
            (
                400,
                r#"{"error": {"message": "{'error': 'Team id = t already exists. Please use a different team id.'}", "type": "internal_server_error", "param": null, "code": "400"}}"#,
                "Rejected",
            ),
            (
                401,
                r#"{"error": {"message": "Authentication Error, Only proxy admin can be used", "type": "auth_error", "param": "None", "code": "401"}}"#,
                "Unauthorized",
            ),
            (
                500,
                r#"{"error":{"message":"{'error': 'No db connected'}","type":"internal_server_error","param":null,"code":"500"}}"#,
                "Server",
            ),
            (502, "<html>bad gateway</html>", "Server"),
            (200, "not json", "Garbage"),
            (
                422,
                r#"{"detail": [{"type": "float_parsing", "loc": ["body", "max_budget"], "msg": "bad"}]}"#,
                "Rejected",
            ),
        ];
        for (status, body, expected) in cases {
            let error = LitellmError::from_response(status, body);
            let name = format!("{error:?}");
            assert!(name.starts_with(expected), "{status} {body} -> {name}");
        }
    }

    #[test]
    fn only_transient_errors_are_retried() {
        assert!(LitellmError::Timeout.is_transient());
        assert!(LitellmError::from_response(503, "{}").is_transient());
        assert!(!LitellmError::from_response(404, r#"{"detail": "x"}"#).is_transient());
        assert!(
            !LitellmError::from_response(401, r#"{"error": {"type": "auth_error"}}"#)
                .is_transient()
        );
    }
}
