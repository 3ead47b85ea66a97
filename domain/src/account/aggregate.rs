//! The account aggregate: its state and the rules its commands must pass.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{AccountCommand, AccountError, AccountEvent, AccountId, Role};

/// Only the state the command rules need; read models hold the rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    id: Option<AccountId>,
    role: Option<Role>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    keys: BTreeMap<String, KeyState>,
    /// The organizations the role holds for; `None`: every organization.
    #[serde(default)]
    organizations: Option<Vec<String>>,
}

/// What a credential of the account may do now: its role (and a key's own), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub account_role: Role,
    pub key_role: Role,
    /// `None`: every organization.
    pub organizations: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct KeyState {
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

/// Why a presented key is refused, for the log (the caller is told only "invalid key").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    UnknownKey,
    Revoked,
    Expired,
    AccountDisabled,
}

impl Account {
    /// The account's role, once it exists.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// What a session of this account may do now: `None` once disabled.
    pub fn session_access(&self) -> Option<Access> {
        let role = self.role.filter(|_| !self.disabled)?;
        Some(Access {
            account_role: role,
            key_role: role,
            organizations: self.organizations.clone(),
        })
    }

    /// What a request made with this account's key `key_id` may do at `now`: the account's role
    /// and the key's (both must allow an action), or why the key is refused. Read from the
    /// account's events, so a revocation or a disabling holds from the moment it commits.
    pub fn key_access(&self, key_id: &str, now: DateTime<Utc>) -> Result<Access, KeyRefusal> {
        let (Some(account_role), Some(key)) = (self.role, self.keys.get(key_id)) else {
            return Err(KeyRefusal::UnknownKey);
        };
        if self.disabled {
            return Err(KeyRefusal::AccountDisabled);
        }
        if key.revoked {
            return Err(KeyRefusal::Revoked);
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyRefusal::Expired);
        }
        Ok(Access {
            account_role,
            key_role: key.role,
            organizations: self.organizations.clone(),
        })
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let AccountCommand::Create {
            account_id,
            email,
            display_name,
            role,
            organizations,
        } = command
        {
            if self.id.is_some() {
                return Err(AccountError::AlreadyExists);
            }
            let event = AccountEvent::AccountCreated {
                account_id,
                email,
                display_name,
                role,
                organizations,
            };
            sink.write(event, self).await;
            return Ok(());
        }
        let (Some(account_id), Some(current)) = (self.id.clone(), self.role) else {
            return Err(AccountError::NotFound);
        };
        // Repeating a change that already holds appends nothing, so retries are safe.
        let event = match command {
            AccountCommand::Create { .. } => unreachable!("handled above"),
            AccountCommand::ChangeRole { role } if role == current => None,
            AccountCommand::ChangeRole { role } => Some(AccountEvent::AccountRoleChanged {
                account_id,
                old_role: current,
                role,
            }),
            AccountCommand::ChangeOrganizations { organizations } => {
                let wanted = organizations.as_ref().map(|list| {
                    list.iter()
                        .map(|o| o.as_str().to_owned())
                        .collect::<Vec<_>>()
                });
                (wanted != self.organizations).then_some(
                    AccountEvent::AccountOrganizationsChanged {
                        account_id,
                        organizations,
                    },
                )
            }
            AccountCommand::Disable if self.disabled => None,
            AccountCommand::Disable => Some(AccountEvent::AccountDisabled { account_id }),
            AccountCommand::Enable if !self.disabled => None,
            AccountCommand::Enable => Some(AccountEvent::AccountEnabled { account_id }),
            AccountCommand::CreateApiKey {
                key_id,
                name,
                role,
                expires_at,
                now,
            } => {
                if self.disabled {
                    return Err(AccountError::Disabled);
                }
                if !current.covers(role) {
                    return Err(AccountError::role_too_wide(role, current));
                }
                if expires_at.is_some_and(|at| at <= now) {
                    return Err(AccountError::ExpiryInPast);
                }
                Some(AccountEvent::ApiKeyCreated {
                    account_id,
                    key_id,
                    name,
                    role,
                    expires_at,
                })
            }
            AccountCommand::RecordPasswordSet if self.disabled => {
                return Err(AccountError::Disabled);
            }
            AccountCommand::RecordPasswordSet => {
                Some(AccountEvent::AccountPasswordSet { account_id })
            }
            AccountCommand::RevokeApiKey { key_id } => match self.keys.get(key_id.as_str()) {
                None => return Err(AccountError::KeyNotFound),
                Some(key) if key.revoked => None,
                Some(_) => Some(AccountEvent::ApiKeyRevoked { account_id, key_id }),
            },
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountCreated {
                account_id,
                role,
                organizations,
                ..
            } => {
                self.id = Some(account_id);
                self.role = Some(role);
                self.organizations = scope(organizations);
            }
            AccountEvent::AccountOrganizationsChanged { organizations, .. } => {
                self.organizations = scope(organizations);
            }
            AccountEvent::AccountRoleChanged { role, .. } => self.role = Some(role),
            AccountEvent::AccountDisabled { .. } => self.disabled = true,
            AccountEvent::AccountEnabled { .. } => self.disabled = false,
            AccountEvent::ApiKeyCreated {
                key_id,
                role,
                expires_at,
                ..
            } => {
                let key = KeyState {
                    role,
                    expires_at,
                    revoked: false,
                };
                self.keys.insert(key_id.as_str().to_owned(), key);
            }
            AccountEvent::ApiKeyRevoked { key_id, .. } => {
                if let Some(key) = self.keys.get_mut(key_id.as_str()) {
                    key.revoked = true;
                }
            }
            AccountEvent::AccountPasswordSet { .. } => {}
        }
    }
}

fn scope(organizations: Option<Vec<crate::organization::OrganizationId>>) -> Option<Vec<String>> {
    organizations.map(|list| list.iter().map(|o| o.as_str().to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::account::{ApiKeyId, DisplayName, Email, KeyName};

    type AccountTest = TestFramework<Account>;

    fn id() -> AccountId {
        AccountId::parse("acct_ana").unwrap()
    }

    fn created(role: Role) -> AccountEvent {
        AccountEvent::AccountCreated {
            account_id: id(),
            email: Email::parse("ana@example.com").unwrap(),
            display_name: DisplayName::parse("Ana").unwrap(),
            role,
            organizations: None,
        }
    }

    fn key(role: Role) -> AccountCommand {
        AccountCommand::CreateApiKey {
            key_id: ApiKeyId::parse("key_1").unwrap(),
            name: KeyName::parse("ci").unwrap(),
            role,
            expires_at: None,
            now: Utc::now(),
        }
    }

    #[test]
    fn a_key_is_no_wider_than_its_account() {
        AccountTest::with(())
            .given(vec![created(Role::Support)])
            .when(key(Role::Billing))
            .then_expect_error(AccountError::role_too_wide(Role::Billing, Role::Support));
        AccountTest::with(())
            .given(vec![created(Role::Admin)])
            .when(key(Role::Owner))
            .then_expect_error(AccountError::role_too_wide(Role::Owner, Role::Admin));
        AccountTest::with(())
            .given(vec![created(Role::Admin)])
            .when(key(Role::Billing))
            .then_expect_events(vec![AccountEvent::ApiKeyCreated {
                account_id: id(),
                key_id: ApiKeyId::parse("key_1").unwrap(),
                name: KeyName::parse("ci").unwrap(),
                role: Role::Billing,
                expires_at: None,
            }]);
    }

    #[test]
    fn a_disabled_account_gets_no_key_and_expiries_lie_ahead() {
        AccountTest::with(())
            .given(vec![
                created(Role::Admin),
                AccountEvent::AccountDisabled { account_id: id() },
            ])
            .when(key(Role::Viewer))
            .then_expect_error(AccountError::Disabled);
        let now = Utc::now();
        AccountTest::with(())
            .given(vec![created(Role::Admin)])
            .when(AccountCommand::CreateApiKey {
                key_id: ApiKeyId::parse("key_1").unwrap(),
                name: KeyName::parse("ci").unwrap(),
                role: Role::Viewer,
                expires_at: Some(now - Duration::seconds(1)),
                now,
            })
            .then_expect_error(AccountError::ExpiryInPast);
    }

    #[test]
    fn a_key_grants_its_role_until_revoked_expired_or_its_account_disabled() {
        use crate::account::ApiKeyId;
        let now = Utc::now();
        let mut account = Account::default();
        account.apply(created(Role::Admin));
        let key_id = ApiKeyId::parse("key_1").unwrap();
        account.apply(AccountEvent::ApiKeyCreated {
            account_id: id(),
            key_id: key_id.clone(),
            name: KeyName::parse("ci").unwrap(),
            role: Role::Support,
            expires_at: Some(now + Duration::hours(1)),
        });
        assert_eq!(
            account
                .key_access("key_1", now)
                .map(|a| (a.account_role, a.key_role, a.organizations)),
            Ok((Role::Admin, Role::Support, None))
        );
        assert_eq!(
            account.key_access("key_2", now),
            Err(KeyRefusal::UnknownKey)
        );
        assert_eq!(
            account.key_access("key_1", now + Duration::hours(2)),
            Err(KeyRefusal::Expired)
        );
        account.apply(AccountEvent::AccountDisabled { account_id: id() });
        assert_eq!(
            account.key_access("key_1", now),
            Err(KeyRefusal::AccountDisabled)
        );
        account.apply(AccountEvent::AccountEnabled { account_id: id() });
        account.apply(AccountEvent::ApiKeyRevoked {
            account_id: id(),
            key_id,
        });
        assert_eq!(account.key_access("key_1", now), Err(KeyRefusal::Revoked));
    }

    #[test]
    fn repeated_changes_append_nothing_and_unknown_keys_are_named() {
        AccountTest::with(())
            .given(vec![created(Role::Viewer)])
            .when(AccountCommand::ChangeRole { role: Role::Viewer })
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given(vec![created(Role::Viewer)])
            .when(AccountCommand::Enable)
            .then_expect_events(vec![]);
        AccountTest::with(())
            .given(vec![created(Role::Viewer)])
            .when(AccountCommand::RevokeApiKey {
                key_id: ApiKeyId::parse("key_9").unwrap(),
            })
            .then_expect_error(AccountError::KeyNotFound);
        AccountTest::with(())
            .given_no_previous_events()
            .when(AccountCommand::Disable)
            .then_expect_error(AccountError::NotFound);
    }

    #[test]
    fn an_account_scoped_to_organizations_passes_its_scope_to_keys_and_sessions() {
        use crate::organization::OrganizationId;
        let acme = OrganizationId::parse("org_acme").unwrap();
        AccountTest::with(())
            .given(vec![created(Role::Admin)])
            .when(AccountCommand::ChangeOrganizations {
                organizations: Some(vec![acme.clone()]),
            })
            .then_expect_events(vec![AccountEvent::AccountOrganizationsChanged {
                account_id: id(),
                organizations: Some(vec![acme.clone()]),
            }]);
        let mut account = Account::default();
        account.apply(created(Role::Admin));
        account.apply(AccountEvent::AccountOrganizationsChanged {
            account_id: id(),
            organizations: Some(vec![acme.clone()]),
        });
        let access = account.session_access().unwrap();
        assert_eq!(access.organizations, Some(vec!["org_acme".to_owned()]));
        AccountTest::with(())
            .given(vec![
                created(Role::Admin),
                AccountEvent::AccountOrganizationsChanged {
                    account_id: id(),
                    organizations: Some(vec![acme.clone()]),
                },
            ])
            .when(AccountCommand::ChangeOrganizations {
                organizations: Some(vec![acme]),
            })
            .then_expect_events(vec![]);
    }
}
