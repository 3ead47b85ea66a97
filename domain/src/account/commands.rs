//! What can be asked of an account.

use chrono::{DateTime, Utc};

use super::role::Role;
use super::values::{AccountId, ApiKeyId, DisplayName, Email, KeyName};
use crate::organization::OrganizationId;

/// What an owner (or the account itself, for its keys) can ask. The aggregate id is the
/// account id.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Create {
        account_id: AccountId,
        email: Email,
        display_name: DisplayName,
        role: Role,
        /// `None`: the role holds for every organization.
        organizations: Option<Vec<OrganizationId>>,
    },
    ChangeRole {
        role: Role,
    },
    /// Narrows (or widens, `None`) the organizations the account's role holds for.
    ChangeOrganizations {
        organizations: Option<Vec<OrganizationId>>,
    },
    /// Ends the account's access at once: its keys and sessions are refused from then on.
    Disable,
    Enable,
    /// The key's secret never reaches the aggregate: only its id, name, role and expiry.
    CreateApiKey {
        key_id: ApiKeyId,
        name: KeyName,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    RevokeApiKey {
        key_id: ApiKeyId,
    },
    /// Records that the password changed; the hash itself never reaches the aggregate.
    RecordPasswordSet,
}
