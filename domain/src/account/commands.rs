//! What can be asked of an account.

use chrono::{DateTime, Utc};

use super::role::Role;
use super::values::{AccountId, ApiKeyId, DisplayName, Email, KeyName};

/// What an owner (or the account itself, for its keys) can ask. The aggregate id is the
/// account id.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Create {
        account_id: AccountId,
        email: Email,
        display_name: DisplayName,
        role: Role,
    },
    ChangeRole {
        role: Role,
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
