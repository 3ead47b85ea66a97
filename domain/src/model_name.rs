//! LiteLLM model names and model group names.

use serde::{Deserialize, Serialize};

use crate::text::{self, TextError};

/// A model name exactly as LiteLLM knows it (case-sensitive, e.g. `gpt-4o-mini`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelName(String);

impl ModelName {
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let field = "models";
        if raw.is_empty() {
            return Err(TextError::Empty { field });
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(TextError::TooLong {
                field,
                max: Self::MAX_LEN,
                len: raw.chars().count(),
            });
        }
        // No trimming: LiteLLM matches names exactly, so " gpt-4o" is a different (unknown) model.
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(TextError::ControlCharacter { field });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a model group; also its aggregate id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("group_name", raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a list of model names: 1..=max entries, duplicates removed, order kept.
pub fn parse_models(raw: &[String], max: usize) -> Result<Vec<ModelName>, TextError> {
    if raw.is_empty() {
        return Err(TextError::Empty { field: "models" });
    }
    if raw.len() > max {
        return Err(TextError::TooLong {
            field: "models",
            max,
            len: raw.len(),
        });
    }
    let mut models: Vec<ModelName> = Vec::with_capacity(raw.len());
    for name in raw {
        let model = ModelName::parse(name)?;
        if !models.contains(&model) {
            models.push(model);
        }
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_exact_and_case_sensitive() {
        assert_ne!(
            ModelName::parse("GPT-4o").unwrap(),
            ModelName::parse("gpt-4o").unwrap()
        );
        assert!(ModelName::parse(" gpt-4o").is_err());
        assert!(ModelName::parse("openai/gpt-4o").is_ok());
    }

    #[test]
    fn model_lists_are_deduplicated_and_bounded() {
        let models = parse_models(&["a".into(), "b".into(), "a".into()], 10).unwrap();
        assert_eq!(models.len(), 2);
        assert!(parse_models(&[], 10).is_err());
        assert!(parse_models(&vec!["m".to_owned(); 11], 10).is_err());
    }
}
