//! What can be asked of a team: the commands its aggregate decides on, with parsed values.

use crate::model_name::GroupName;
use crate::money::{Money, Percent};
use crate::organization::OrganizationId;

use super::values::{BudgetMode, KeyFingerprint, RateLimits, TeamAlias, TeamId};

#[derive(Debug, Clone, PartialEq)]
pub struct NewTeam {
    pub team_id: TeamId,
    pub organization_id: OrganizationId,
    pub team_alias: TeamAlias,
    pub model_groups: Vec<GroupName>,
    pub credits: Money,
    pub budget_mode: BudgetMode,
    pub rate_limits: RateLimits,
    pub markup_percent: Percent,
    pub key_fingerprint: KeyFingerprint,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TeamCommand {
    Create(Box<NewTeam>),
    AddCredits {
        amount: Money,
        reason: Option<String>,
    },
    AssignModelGroup {
        group: GroupName,
    },
    UnassignModelGroup {
        group: GroupName,
    },
    SetBudgetMode {
        budget_mode: BudgetMode,
    },
    SetRateLimits {
        rate_limits: RateLimits,
    },
    SetMarkup {
        markup_percent: Percent,
    },
    Suspend {
        reason: Option<String>,
    },
    Resume,
    RotateKey {
        new_fingerprint: KeyFingerprint,
    },
    RecordKeyRevealed,
    Delete,
}
