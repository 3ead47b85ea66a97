//! Roles and what each may do. Every admin route names the permission it needs; a role is a
//! fixed set of them, so "who may do what" is one table, not a rule scattered over handlers.

use serde::{Deserialize, Serialize};

/// What a request asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Any read of the admin API (reports and exports included), accounts excepted.
    Read,
    /// Organizations, model groups, teams, their groups, rate limits and webhooks.
    Manage,
    /// Credits, markup and budget mode, and recorded usage: what a team is billed.
    Billing,
    /// Suspending and resuming a team.
    Suspend,
    /// Rotating a team's virtual key.
    RotateKey,
    /// Revealing a team's virtual key.
    RevealKey,
    /// Accounts, their roles and API keys.
    Accounts,
}

/// A person's role; an API key carries one no wider than its account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, accounts included.
    Owner,
    /// Everything but accounts.
    Admin,
    /// Credits, plans, reports and exports.
    Billing,
    /// Reads, suspend, resume and rotate.
    Support,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Billing,
        Role::Support,
        Role::Viewer,
    ];

    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Owner => true,
            Role::Admin => permission != P::Accounts,
            Role::Billing => matches!(permission, P::Read | P::Billing),
            Role::Support => matches!(permission, P::Read | P::Suspend | P::RotateKey),
            Role::Viewer => permission == P::Read,
        }
    }

    /// Whether every permission of `other` is also this role's: what a key may be given.
    pub fn covers(self, other: Role) -> bool {
        use Permission as P;
        [
            P::Read,
            P::Manage,
            P::Billing,
            P::Suspend,
            P::RotateKey,
            P::RevealKey,
            P::Accounts,
        ]
        .into_iter()
        .all(|p| !other.allows(p) || self.allows(p))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Billing => "billing",
            Role::Support => "support",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_is_the_set_the_issue_names() {
        use Permission as P;
        assert!(Role::Owner.allows(P::Accounts));
        assert!(!Role::Admin.allows(P::Accounts) && Role::Admin.allows(P::RevealKey));
        assert!(Role::Billing.allows(P::Billing) && !Role::Billing.allows(P::Suspend));
        assert!(Role::Support.allows(P::Suspend) && Role::Support.allows(P::RotateKey));
        assert!(!Role::Support.allows(P::Billing) && !Role::Support.allows(P::RevealKey));
        assert!(Role::Viewer.allows(P::Read) && !Role::Viewer.allows(P::Manage));
    }

    #[test]
    fn a_role_covers_only_narrower_ones() {
        assert!(Role::Owner.covers(Role::Admin));
        assert!(Role::Admin.covers(Role::Billing) && Role::Admin.covers(Role::Support));
        assert!(!Role::Billing.covers(Role::Support) && !Role::Support.covers(Role::Billing));
        assert!(!Role::Admin.covers(Role::Owner));
        for role in Role::ALL {
            assert!(role.covers(role) && role.covers(Role::Viewer));
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
