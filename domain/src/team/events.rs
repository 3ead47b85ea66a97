//! What happened to a team: the events its stream holds, in the shape they are stored.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::model_name::GroupName;
use crate::money::{Money, Percent};
use crate::organization::OrganizationId;

use super::values::{BudgetMode, KeyFingerprint, RateLimits, TeamAlias, TeamId};

/// Facts about a team. Events carry fingerprints, never keys; and derived totals (e.g.
/// `credits_total`) so projections do no arithmetic of their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TeamEvent {
    TeamCreated {
        team_id: TeamId,
        organization_id: OrganizationId,
        team_alias: TeamAlias,
        model_groups: Vec<GroupName>,
        credits: Money,
        budget_mode: BudgetMode,
        rate_limits: RateLimits,
        markup_percent: Percent,
        key_fingerprint: KeyFingerprint,
    },
    CreditsAdded {
        team_id: TeamId,
        amount: Money,
        credits_total: Money,
        reason: Option<String>,
    },
    ModelGroupAssigned {
        team_id: TeamId,
        group: GroupName,
        model_groups: Vec<GroupName>,
    },
    ModelGroupUnassigned {
        team_id: TeamId,
        group: GroupName,
        model_groups: Vec<GroupName>,
    },
    BudgetModeSet {
        team_id: TeamId,
        budget_mode: BudgetMode,
    },
    RateLimitsSet {
        team_id: TeamId,
        rate_limits: RateLimits,
    },
    MarkupSet {
        team_id: TeamId,
        markup_percent: Percent,
    },
    TeamSuspended {
        team_id: TeamId,
        reason: Option<String>,
    },
    TeamResumed {
        team_id: TeamId,
    },
    VirtualKeyRotated {
        team_id: TeamId,
        old_fingerprint: KeyFingerprint,
        new_fingerprint: KeyFingerprint,
    },
    VirtualKeyRevealed {
        team_id: TeamId,
        key_fingerprint: KeyFingerprint,
    },
    TeamDeleted {
        team_id: TeamId,
        key_fingerprint: KeyFingerprint,
    },
}

impl DomainEvent for TeamEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TeamCreated { .. } => "TeamCreated",
            Self::CreditsAdded { .. } => "CreditsAdded",
            Self::ModelGroupAssigned { .. } => "ModelGroupAssigned",
            Self::ModelGroupUnassigned { .. } => "ModelGroupUnassigned",
            Self::BudgetModeSet { .. } => "BudgetModeSet",
            Self::RateLimitsSet { .. } => "RateLimitsSet",
            Self::MarkupSet { .. } => "MarkupSet",
            Self::TeamSuspended { .. } => "TeamSuspended",
            Self::TeamResumed { .. } => "TeamResumed",
            Self::VirtualKeyRotated { .. } => "VirtualKeyRotated",
            Self::VirtualKeyRevealed { .. } => "VirtualKeyRevealed",
            Self::TeamDeleted { .. } => "TeamDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
