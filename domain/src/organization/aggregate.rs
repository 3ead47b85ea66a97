use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{
    OrganizationCommand, OrganizationError, OrganizationEvent, OrganizationId, OrganizationName,
};

/// Only the state the command rules need; read models hold the rest.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Organization {
    id: Option<OrganizationId>,
    name: Option<OrganizationName>,
}

impl Aggregate for Organization {
    const TYPE: &'static str = "Organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::organization::LitellmOrganizationId;

    type OrganizationTest = TestFramework<Organization>;

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
        OrganizationTest::with(())
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
        OrganizationTest::with(())
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
        OrganizationTest::with(())
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
        OrganizationTest::with(())
            .given(vec![created()])
            .when(OrganizationCommand::Rename { name: name("Acme") })
            .then_expect_events(vec![]);
    }

    #[test]
    fn renaming_an_unknown_organization_is_refused() {
        OrganizationTest::with(())
            .given_no_previous_events()
            .when(OrganizationCommand::Rename { name: name("Acme") })
            .then_expect_error(OrganizationError::NotFound);
    }

    #[test]
    fn a_rename_after_a_rename_sees_the_latest_name() {
        OrganizationTest::with(())
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
}
