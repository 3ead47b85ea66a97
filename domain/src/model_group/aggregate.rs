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
    },
    ModelGroupModelsChanged {
        group_name: GroupName,
        models: Vec<ModelName>,
        added: Vec<ModelName>,
        removed: Vec<ModelName>,
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
    #[error("could not check which teams use the group: {0}")]
    Lookup(String),
}

/// What the group needs to know from outside its own stream.
#[async_trait]
pub trait ModelGroupLookups: Send + Sync {
    /// Teams (not deleted) that have the group assigned.
    async fn teams_using(&self, group: &GroupName) -> Result<Vec<String>, String>;
}

pub struct ModelGroupServices {
    pub lookups: Box<dyn ModelGroupLookups>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ModelGroup {
    name: Option<GroupName>,
    models: Vec<ModelName>,
    deleted: bool,
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
                sink.write(
                    ModelGroupEvent::ModelGroupCreated {
                        group_name,
                        models,
                        description,
                    },
                    self,
                )
                .await;
            }
            ModelGroupCommand::SetModels { models } => {
                let group_name = self.live_name()?.clone();
                if models == self.models {
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
                sink.write(
                    ModelGroupEvent::ModelGroupModelsChanged {
                        group_name,
                        models,
                        added,
                        removed,
                    },
                    self,
                )
                .await;
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
                group_name, models, ..
            } => {
                self.name = Some(group_name);
                self.models = models;
                self.deleted = false;
            }
            ModelGroupEvent::ModelGroupModelsChanged { models, .. } => self.models = models,
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

    fn services(teams: &[&str]) -> ModelGroupServices {
        ModelGroupServices {
            lookups: Box::new(Usage(teams.iter().map(|t| t.to_string()).collect())),
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
}
