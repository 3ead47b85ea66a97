//! The organization aggregate: its state and the rules its commands must pass.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{
    OrganizationCommand, OrganizationError, OrganizationEvent, OrganizationId, OrganizationName,
};

/// What organization commands need to know from other read models.
#[async_trait]
pub trait OrganizationLookups: Send + Sync {
    /// Teams of the organization that are not deleted.
    async fn live_teams(&self, id: &OrganizationId) -> Result<Vec<String>, String>;
}

pub struct OrganizationServices {
    pub lookups: Box<dyn OrganizationLookups>,
}

/// Only the state the command rules need; read models hold the rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Organization {
    id: Option<OrganizationId>,
    name: Option<OrganizationName>,
    #[serde(default)]
    deleted: bool,
}

impl Aggregate for Organization {
    const TYPE: &'static str = "Organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = OrganizationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            OrganizationCommand::Create {
                organization_id,
                name,
                litellm_organization_id,
            } => {
                if self.id.is_some() {
                    return Err(OrganizationError::AlreadyExists);
                }
                let event = OrganizationEvent::OrganizationCreated {
                    organization_id,
                    name,
                    litellm_organization_id,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::Rename { name } => {
                let (Some(id), Some(old_name)) = (&self.id, &self.name) else {
                    return Err(OrganizationError::NotFound);
                };
                if self.deleted {
                    return Err(OrganizationError::Deleted);
                }
                // Renaming to the current name is a no-op, so retries append nothing.
                if *old_name != name {
                    let event = OrganizationEvent::OrganizationRenamed {
                        organization_id: id.clone(),
                        old_name: old_name.clone(),
                        name,
                    };
                    sink.write(event, self).await;
                }
            }
            OrganizationCommand::Delete => {
                let Some(id) = self.id.clone() else {
                    return Err(OrganizationError::NotFound);
                };
                if self.deleted {
                    return Err(OrganizationError::Deleted);
                }
                let teams = services
                    .lookups
                    .live_teams(&id)
                    .await
                    .map_err(OrganizationError::Lookup)?;
                if !teams.is_empty() {
                    return Err(OrganizationError::HasTeams(teams));
                }
                sink.write(
                    OrganizationEvent::OrganizationDeleted {
                        organization_id: id,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrganizationEvent::OrganizationCreated {
                organization_id,
                name,
                ..
            } => {
                self.id = Some(organization_id);
                self.name = Some(name);
            }
            OrganizationEvent::OrganizationRenamed { name, .. } => self.name = Some(name),
            OrganizationEvent::OrganizationDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::organization::LitellmOrganizationId;

    type OrganizationTest = TestFramework<Organization>;

    struct Teams(Vec<String>);

    #[async_trait]
    impl OrganizationLookups for Teams {
        async fn live_teams(&self, _id: &OrganizationId) -> Result<Vec<String>, String> {
            Ok(self.0.clone())
        }
    }

    fn no_teams() -> OrganizationServices {
        OrganizationServices {
            lookups: Box::new(Teams(vec![])),
        }
    }

    fn id() -> OrganizationId {
        OrganizationId::parse("org_acme").unwrap()
    }

    fn name(raw: &str) -> OrganizationName {
        OrganizationName::parse(raw).unwrap()
    }

    fn created() -> OrganizationEvent {
        OrganizationEvent::OrganizationCreated {
            organization_id: id(),
            name: name("Acme"),
            litellm_organization_id: Some(LitellmOrganizationId::parse("acme-llm").unwrap()),
        }
    }

    #[test]
    fn create_records_the_organization() {
        OrganizationTest::with(no_teams())
            .given_no_previous_events()
            .when(OrganizationCommand::Create {
                organization_id: id(),
                name: name("Acme"),
                litellm_organization_id: Some(LitellmOrganizationId::parse("acme-llm").unwrap()),
            })
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn creating_twice_is_refused() {
        OrganizationTest::with(no_teams())
            .given(vec![created()])
            .when(OrganizationCommand::Create {
                organization_id: id(),
                name: name("Other"),
                litellm_organization_id: None,
            })
            .then_expect_error(OrganizationError::AlreadyExists);
    }

    #[test]
    fn rename_records_old_and_new_name() {
        OrganizationTest::with(no_teams())
            .given(vec![created()])
            .when(OrganizationCommand::Rename {
                name: name("Acme Corp"),
            })
            .then_expect_events(vec![OrganizationEvent::OrganizationRenamed {
                organization_id: id(),
                old_name: name("Acme"),
                name: name("Acme Corp"),
            }]);
    }

    #[test]
    fn rename_to_the_same_name_appends_nothing() {
        OrganizationTest::with(no_teams())
            .given(vec![created()])
            .when(OrganizationCommand::Rename { name: name("Acme") })
            .then_expect_events(vec![]);
    }

    #[test]
    fn renaming_an_unknown_organization_is_refused() {
        OrganizationTest::with(no_teams())
            .given_no_previous_events()
            .when(OrganizationCommand::Rename { name: name("Acme") })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn a_rename_after_a_rename_sees_the_latest_name() {
        OrganizationTest::with(no_teams())
            .given(vec![
                created(),
                OrganizationEvent::OrganizationRenamed {
                    organization_id: id(),
                    old_name: name("Acme"),
                    name: name("Acme Corp"),
                },
            ])
            .when(OrganizationCommand::Rename { name: name("Acme") })
            .then_expect_events(vec![OrganizationEvent::OrganizationRenamed {
                organization_id: id(),
                old_name: name("Acme Corp"),
                name: name("Acme"),
            }]);
    }

    #[test]
    fn an_organization_without_teams_is_deleted_and_then_frozen() {
        let deleted = OrganizationEvent::OrganizationDeleted {
            organization_id: id(),
        };
        OrganizationTest::with(no_teams())
            .given(vec![created()])
            .when(OrganizationCommand::Delete)
            .then_expect_events(vec![deleted.clone()]);
        OrganizationTest::with(no_teams())
            .given(vec![created(), deleted])
            .when(OrganizationCommand::Rename { name: name("X") })
            .then_expect_error(OrganizationError::Deleted);
    }

    #[test]
    fn an_organization_with_teams_cannot_be_deleted() {
        OrganizationTest::with(OrganizationServices {
            lookups: Box::new(Teams(vec!["team_1".into()])),
        })
        .given(vec![created()])
        .when(OrganizationCommand::Delete)
        .then_expect_error(OrganizationError::HasTeams(vec!["team_1".into()]));
    }
}
