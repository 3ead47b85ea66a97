//! The model group aggregate: a named set of LiteLLM model names, checked against its catalog.

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model_name::{GroupName, ModelName};

#[derive(Debug, Clone, PartialEq)]
pub enum ModelGroupCommand {
    Create {
        group_name: GroupName,
        models: Vec<ModelName>,
        description: Option<String>,
    },
    SetModels {
        models: Vec<ModelName>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelGroupEvent {
    ModelGroupCreated {
        group_name: GroupName,
        models: Vec<ModelName>,
        description: Option<String>,
        /// Whether the names were checked against LiteLLM's catalog (false when it was
        /// unreachable or not configured).
        #[serde(default)]
        verified: bool,
    },
    ModelGroupModelsChanged {
        group_name: GroupName,
        models: Vec<ModelName>,
        added: Vec<ModelName>,
        removed: Vec<ModelName>,
        #[serde(default)]
        verified: bool,
    },
    ModelGroupDeleted {
        group_name: GroupName,
    },
}

impl DomainEvent for ModelGroupEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ModelGroupCreated { .. } => "ModelGroupCreated",
            Self::ModelGroupModelsChanged { .. } => "ModelGroupModelsChanged",
            Self::ModelGroupDeleted { .. } => "ModelGroupDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelGroupError {
    #[error("a model group with this name already exists")]
    AlreadyExists,
    #[error("model group not found")]
    NotFound,
    #[error("model group is used by teams {0:?}; unassign it from them first")]
    InUse(Vec<String>),
    #[error("{}", unknown_models_message(.unknown, .known))]
    UnknownModels {
        unknown: Vec<UnknownModel>,
        known: Vec<String>,
    },
    #[error("could not check which teams use the group: {0}")]
    Lookup(String),
}

/// A model name LiteLLM does not serve, with the known name it most resembles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel {
    pub name: String,
    pub closest: Option<String>,
}

fn unknown_models_message(unknown: &[UnknownModel], known: &[String]) -> String {
    let names: Vec<String> = unknown
        .iter()
        .map(|m| match &m.closest {
            Some(closest) => format!("{:?} (did you mean {closest:?}?)", m.name),
            None => format!("{:?}", m.name),
        })
        .collect();
    format!(
        "LiteLLM does not know the models {}; names are case-sensitive. Known models: {}",
        names.join(", "),
        known.join(", ")
    )
}

/// The known name closest to `name`: an exact case-insensitive match first, else the smallest
/// edit distance between lower-cased names.
pub fn closest_model(name: &str, known: &[String]) -> Option<String> {
    let lower = name.to_lowercase();
    if let Some(same) = known.iter().find(|k| k.to_lowercase() == lower) {
        return Some(same.clone());
    }
    known
        .iter()
        .map(|k| (strsim::levenshtein(&lower, &k.to_lowercase()), k))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.clone())
}

/// LiteLLM's model catalog, as far as it can be known right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Catalog {
    Known(Vec<String>),
    /// LiteLLM could not be asked; names are accepted unverified.
    Unavailable(String),
    /// No LiteLLM is configured; names are accepted unverified.
    NotConfigured,
}

#[async_trait]
pub trait ModelCatalog: Send + Sync {
    async fn catalog(&self) -> Catalog;
}

/// Checks names against the catalog: `Ok(verified)` or the unknown names.
async fn verify(
    services: &ModelGroupServices,
    models: &[ModelName],
) -> Result<bool, ModelGroupError> {
    match services.catalog.catalog().await {
        Catalog::Known(known) => {
            let unknown: Vec<UnknownModel> = models
                .iter()
                .filter(|m| !known.iter().any(|k| k == m.as_str()))
                .map(|m| UnknownModel {
                    name: m.as_str().to_owned(),
                    closest: closest_model(m.as_str(), &known),
                })
                .collect();
            if unknown.is_empty() {
                Ok(true)
            } else {
                Err(ModelGroupError::UnknownModels { unknown, known })
            }
        }
        Catalog::Unavailable(_) | Catalog::NotConfigured => Ok(false),
    }
}

/// What the group needs to know from outside its own stream.
#[async_trait]
pub trait ModelGroupLookups: Send + Sync {
    /// Teams (not deleted) that have the group assigned.
    async fn teams_using(&self, group: &GroupName) -> Result<Vec<String>, String>;
}

pub struct ModelGroupServices {
    pub lookups: Box<dyn ModelGroupLookups>,
    pub catalog: Box<dyn ModelCatalog>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelGroup {
    name: Option<GroupName>,
    models: Vec<ModelName>,
    deleted: bool,
    #[serde(default)]
    verified: bool,
}

impl ModelGroup {
    fn live_name(&self) -> Result<&GroupName, ModelGroupError> {
        match &self.name {
            Some(name) if !self.deleted => Ok(name),
            _ => Err(ModelGroupError::NotFound),
        }
    }
}

impl Aggregate for ModelGroup {
    const TYPE: &'static str = "ModelGroup";
    type Command = ModelGroupCommand;
    type Event = ModelGroupEvent;
    type Error = ModelGroupError;
    type Services = ModelGroupServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ModelGroupCommand::Create {
                group_name,
                models,
                description,
            } => {
                // A deleted group's name may be used again; its history stays in the stream.
                if self.name.is_some() && !self.deleted {
                    return Err(ModelGroupError::AlreadyExists);
                }
                let verified = verify(services, &models).await?;
                let event = ModelGroupEvent::ModelGroupCreated {
                    group_name,
                    models,
                    description,
                    verified,
                };
                sink.write(event, self).await;
            }
            ModelGroupCommand::SetModels { models } => {
                let group_name = self.live_name()?.clone();
                let verified = verify(services, &models).await?;
                if models == self.models && verified == self.verified {
                    return Ok(());
                }
                let added = models
                    .iter()
                    .filter(|m| !self.models.contains(m))
                    .cloned()
                    .collect();
                let removed = self
                    .models
                    .iter()
                    .filter(|m| !models.contains(m))
                    .cloned()
                    .collect();
                let event = ModelGroupEvent::ModelGroupModelsChanged {
                    group_name,
                    models,
                    added,
                    removed,
                    verified,
                };
                sink.write(event, self).await;
            }
            ModelGroupCommand::Delete => {
                let group_name = self.live_name()?.clone();
                let teams = services
                    .lookups
                    .teams_using(&group_name)
                    .await
                    .map_err(ModelGroupError::Lookup)?;
                if !teams.is_empty() {
                    return Err(ModelGroupError::InUse(teams));
                }
                sink.write(ModelGroupEvent::ModelGroupDeleted { group_name }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ModelGroupEvent::ModelGroupCreated {
                group_name,
                models,
                verified,
                ..
            } => {
                self.name = Some(group_name);
                self.models = models;
                self.deleted = false;
                self.verified = verified;
            }
            ModelGroupEvent::ModelGroupModelsChanged {
                models, verified, ..
            } => {
                self.models = models;
                self.verified = verified;
            }
            ModelGroupEvent::ModelGroupDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    struct Usage(Vec<String>);

    #[async_trait]
    impl ModelGroupLookups for Usage {
        async fn teams_using(&self, _group: &GroupName) -> Result<Vec<String>, String> {
            Ok(self.0.clone())
        }
    }

    struct Fixed(Catalog);

    #[async_trait]
    impl ModelCatalog for Fixed {
        async fn catalog(&self) -> Catalog {
            self.0.clone()
        }
    }

    fn known() -> Catalog {
        Catalog::Known(
            ["gpt-4o", "gpt-4o-mini", "claude", "x", "y"]
                .map(String::from)
                .to_vec(),
        )
    }

    fn services(teams: &[&str]) -> ModelGroupServices {
        with_catalog(teams, known())
    }

    fn with_catalog(teams: &[&str], catalog: Catalog) -> ModelGroupServices {
        ModelGroupServices {
            lookups: Box::new(Usage(teams.iter().map(|t| t.to_string()).collect())),
            catalog: Box::new(Fixed(catalog)),
        }
    }

    fn name() -> GroupName {
        GroupName::parse("gpt-models").unwrap()
    }

    fn models(names: &[&str]) -> Vec<ModelName> {
        names.iter().map(|n| ModelName::parse(n).unwrap()).collect()
    }

    fn created() -> ModelGroupEvent {
        ModelGroupEvent::ModelGroupCreated {
            group_name: name(),
            models: models(&["gpt-4o"]),
            description: None,
            verified: true,
        }
    }

    #[test]
    fn create_records_the_group() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given_no_previous_events()
            .when(ModelGroupCommand::Create {
                group_name: name(),
                models: models(&["gpt-4o"]),
                description: None,
            })
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn a_live_group_cannot_be_created_twice() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![created()])
            .when(ModelGroupCommand::Create {
                group_name: name(),
                models: models(&["x"]),
                description: None,
            })
            .then_expect_error(ModelGroupError::AlreadyExists);
    }

    #[test]
    fn a_deleted_group_name_can_be_reused() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![
                created(),
                ModelGroupEvent::ModelGroupDeleted { group_name: name() },
            ])
            .when(ModelGroupCommand::Create {
                group_name: name(),
                models: models(&["y"]),
                description: None,
            })
            .then_expect_events(vec![ModelGroupEvent::ModelGroupCreated {
                group_name: name(),
                models: models(&["y"]),
                description: None,
                verified: true,
            }]);
    }

    #[test]
    fn changing_models_records_the_difference() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![created()])
            .when(ModelGroupCommand::SetModels {
                models: models(&["gpt-4o-mini", "claude"]),
            })
            .then_expect_events(vec![ModelGroupEvent::ModelGroupModelsChanged {
                group_name: name(),
                models: models(&["gpt-4o-mini", "claude"]),
                added: models(&["gpt-4o-mini", "claude"]),
                removed: models(&["gpt-4o"]),
                verified: true,
            }]);
    }

    #[test]
    fn setting_the_same_models_appends_nothing() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![created()])
            .when(ModelGroupCommand::SetModels {
                models: models(&["gpt-4o"]),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_group_in_use_cannot_be_deleted() {
        TestFramework::<ModelGroup>::with(services(&["team_a"]))
            .given(vec![created()])
            .when(ModelGroupCommand::Delete)
            .then_expect_error(ModelGroupError::InUse(vec!["team_a".into()]));
    }

    #[test]
    fn an_unused_group_is_deleted_and_then_unknown() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![created()])
            .when(ModelGroupCommand::Delete)
            .then_expect_events(vec![ModelGroupEvent::ModelGroupDeleted {
                group_name: name(),
            }]);
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![
                created(),
                ModelGroupEvent::ModelGroupDeleted { group_name: name() },
            ])
            .when(ModelGroupCommand::SetModels {
                models: models(&["x"]),
            })
            .then_expect_error(ModelGroupError::NotFound);
    }

    #[test]
    fn names_litellm_does_not_know_are_refused_with_the_closest_match() {
        TestFramework::<ModelGroup>::with(services(&[]))
            .given_no_previous_events()
            .when(ModelGroupCommand::Create {
                group_name: name(),
                models: models(&["GPT-4o", "gpt-4o-mimi", "gpt-4o"]),
                description: None,
            })
            .then_expect_error(ModelGroupError::UnknownModels {
                unknown: vec![
                    UnknownModel {
                        name: "GPT-4o".into(),
                        closest: Some("gpt-4o".into()),
                    },
                    UnknownModel {
                        name: "gpt-4o-mimi".into(),
                        closest: Some("gpt-4o-mini".into()),
                    },
                ],
                known: ["gpt-4o", "gpt-4o-mini", "claude", "x", "y"]
                    .map(String::from)
                    .to_vec(),
            });
    }

    #[test]
    fn without_litellm_names_are_accepted_unverified() {
        TestFramework::<ModelGroup>::with(with_catalog(&[], Catalog::Unavailable("down".into())))
            .given_no_previous_events()
            .when(ModelGroupCommand::Create {
                group_name: name(),
                models: models(&["anything"]),
                description: None,
            })
            .then_expect_events(vec![ModelGroupEvent::ModelGroupCreated {
                group_name: name(),
                models: models(&["anything"]),
                description: None,
                verified: false,
            }]);
    }

    #[test]
    fn setting_the_same_models_again_verifies_them_once_litellm_is_back() {
        let unverified = ModelGroupEvent::ModelGroupCreated {
            group_name: name(),
            models: models(&["gpt-4o"]),
            description: None,
            verified: false,
        };
        TestFramework::<ModelGroup>::with(services(&[]))
            .given(vec![unverified])
            .when(ModelGroupCommand::SetModels {
                models: models(&["gpt-4o"]),
            })
            .then_expect_events(vec![ModelGroupEvent::ModelGroupModelsChanged {
                group_name: name(),
                models: models(&["gpt-4o"]),
                added: vec![],
                removed: vec![],
                verified: true,
            }]);
    }
}
