//! Shared rules for the human-entered strings our value types wrap.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters (got {len})")]
    TooLong {
        field: &'static str,
        max: usize,
        len: usize,
    },
    #[error("{field} must not contain control characters")]
    ControlCharacter { field: &'static str },
    #[error("{field} may contain only letters, digits, '-', '_' and '.'")]
    InvalidIdentifier { field: &'static str },
    #[error("{field} must not contain a NUL character")]
    NulCharacter { field: &'static str },
    #[error("{field} {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl TextError {
    /// The input field the error is about, for clients that highlight it.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Empty { field }
            | Self::TooLong { field, .. }
            | Self::ControlCharacter { field }
            | Self::InvalidIdentifier { field }
            | Self::NulCharacter { field }
            | Self::Invalid { field, .. } => field,
        }
    }
}

/// A display name: trimmed, non-empty, at most `max` characters, no control characters.
pub fn display_name(field: &'static str, raw: &str, max: usize) -> Result<String, TextError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(TextError::TooLong { field, max, len });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter { field });
    }
    Ok(trimmed.to_owned())
}

/// An identifier safe in URLs and logs: ASCII letters, digits, `-`, `_`, `.`; 1..=max chars.
pub fn identifier(field: &'static str, raw: &str, max: usize) -> Result<String, TextError> {
    if raw.is_empty() {
        return Err(TextError::Empty { field });
    }
    if raw.len() > max {
        return Err(TextError::TooLong {
            field,
            max,
            len: raw.chars().count(),
        });
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(TextError::InvalidIdentifier { field });
    }
    Ok(raw.to_owned())
}

/// Free-form JSON a client attaches (job metadata, results): no NUL character in any string
/// or key. PostgreSQL cannot store one in `jsonb`, so such an event would stop the read models.
pub fn storable_json(field: &'static str, value: &serde_json::Value) -> Result<(), TextError> {
    use serde_json::Value;
    let nul = |text: &str| text.contains('\0');
    let ok = match value {
        Value::String(text) => !nul(text),
        Value::Array(items) => return items.iter().try_for_each(|v| storable_json(field, v)),
        Value::Object(map) => {
            for (key, v) in map {
                if nul(key) {
                    return Err(TextError::NulCharacter { field });
                }
                storable_json(field, v)?;
            }
            true
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    };
    if ok {
        Ok(())
    } else {
        Err(TextError::NulCharacter { field })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_a_nul_anywhere_is_not_storable() {
        let ok = serde_json::json!({"a": ["x", 1, null, {"b": true}]});
        assert!(storable_json("metadata", &ok).is_ok());
        for bad in [
            serde_json::json!({"a": "x\u{0}"}),
            serde_json::json!({"a\u{0}": 1}),
            serde_json::json!({"a": [{"b": ["\u{0}"]}]}),
        ] {
            assert_eq!(
                storable_json("metadata", &bad),
                Err(TextError::NulCharacter { field: "metadata" })
            );
        }
    }

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(display_name("name", "  Acme  ", 10).unwrap(), "Acme");
        assert_eq!(
            display_name("name", "   ", 10),
            Err(TextError::Empty { field: "name" })
        );
        assert!(matches!(
            display_name("name", &"é".repeat(11), 10),
            Err(TextError::TooLong { len: 11, .. })
        ));
        assert_eq!(display_name("name", &"é".repeat(10), 10).unwrap().len(), 20);
        assert_eq!(
            display_name("name", "a\u{0}b", 10),
            Err(TextError::ControlCharacter { field: "name" })
        );
    }

    #[test]
    fn identifier_accepts_only_url_safe_ascii() {
        assert_eq!(identifier("id", "org_1-a.b", 64).unwrap(), "org_1-a.b");
        assert!(identifier("id", "", 64).is_err());
        assert!(identifier("id", "a b", 64).is_err());
        assert!(identifier("id", "a/b", 64).is_err());
        assert!(identifier("id", "ü", 64).is_err());
        assert!(identifier("id", &"a".repeat(65), 64).is_err());
    }
}
