//! What happened to an account: the events its stream holds. No password or key secret is
//! ever in them (the log is kept for ever and replayed for audits).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::role::Role;
use super::values::{AccountId, ApiKeyId, DisplayName, Email, KeyName};
use crate::organization::OrganizationId;

/// Stored externally tagged; the `unique_claim_rules` table reads `email` from that shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountCreated {
        account_id: AccountId,
        email: Email,
        display_name: DisplayName,
        role: Role,
        /// The organizations the role holds for; absent: every organization.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        organizations: Option<Vec<OrganizationId>>,
    },
    /// The role now holds for these organizations only (`None`: every organization).
    AccountOrganizationsChanged {
        account_id: AccountId,
        organizations: Option<Vec<OrganizationId>>,
    },
    AccountRoleChanged {
        account_id: AccountId,
        old_role: Role,
        role: Role,
    },
    AccountDisabled {
        account_id: AccountId,
    },
    AccountEnabled {
        account_id: AccountId,
    },
    ApiKeyCreated {
        account_id: AccountId,
        key_id: ApiKeyId,
        name: KeyName,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    },
    ApiKeyRevoked {
        account_id: AccountId,
        key_id: ApiKeyId,
    },
    AccountPasswordSet {
        account_id: AccountId,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountCreated { .. } => "AccountCreated",
            Self::AccountRoleChanged { .. } => "AccountRoleChanged",
            Self::AccountOrganizationsChanged { .. } => "AccountOrganizationsChanged",
            Self::AccountDisabled { .. } => "AccountDisabled",
            Self::AccountEnabled { .. } => "AccountEnabled",
            Self::ApiKeyCreated { .. } => "ApiKeyCreated",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            Self::AccountPasswordSet { .. } => "AccountPasswordSet",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
