//! A team as its events left it at some instant: the fold behind "what were this team's
//! credits, models and status on 1 October". Pure; the caller picks the events.

use serde::Serialize;

use crate::model_name::GroupName;
use crate::money::{Money, Percent};

use super::{BudgetMode, KeyFingerprint, RateLimits, TeamEvent, TeamStatus};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamAsOf {
    pub team_id: String,
    pub organization_id: String,
    pub team_alias: String,
    pub status: TeamStatus,
    pub model_groups: Vec<GroupName>,
    pub credits: Money,
    pub budget_mode: BudgetMode,
    pub rate_limits: RateLimits,
    pub markup_percent: Percent,
    pub key_fingerprint: KeyFingerprint,
}

impl TeamAsOf {
    /// Folds a team's events in stream order; `None` before it was created.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a TeamEvent>) -> Option<Self> {
        let mut team: Option<Self> = None;
        for event in events {
            match (event, team.as_mut()) {
                (
                    TeamEvent::TeamCreated {
                        team_id,
                        organization_id,
                        team_alias,
                        model_groups,
                        credits,
                        budget_mode,
                        rate_limits,
                        markup_percent,
                        key_fingerprint,
                    },
                    _,
                ) => {
                    team = Some(Self {
                        team_id: team_id.as_str().to_owned(),
                        organization_id: organization_id.as_str().to_owned(),
                        team_alias: team_alias.as_str().to_owned(),
                        status: TeamStatus::Active,
                        model_groups: model_groups.clone(),
                        credits: *credits,
                        budget_mode: *budget_mode,
                        rate_limits: *rate_limits,
                        markup_percent: *markup_percent,
                        key_fingerprint: key_fingerprint.clone(),
                    })
                }
                (_, None) => {}
                (TeamEvent::CreditsAdded { credits_total, .. }, Some(t)) => {
                    t.credits = *credits_total
                }
                (
                    TeamEvent::ModelGroupAssigned { model_groups, .. }
                    | TeamEvent::ModelGroupUnassigned { model_groups, .. },
                    Some(t),
                ) => t.model_groups = model_groups.clone(),
                (TeamEvent::BudgetModeSet { budget_mode, .. }, Some(t)) => {
                    t.budget_mode = *budget_mode
                }
                (TeamEvent::RateLimitsSet { rate_limits, .. }, Some(t)) => {
                    t.rate_limits = *rate_limits
                }
                (TeamEvent::MarkupSet { markup_percent, .. }, Some(t)) => {
                    t.markup_percent = *markup_percent
                }
                (TeamEvent::TeamSuspended { .. }, Some(t)) => t.status = TeamStatus::Suspended,
                (TeamEvent::TeamResumed { .. }, Some(t)) => t.status = TeamStatus::Active,
                (
                    TeamEvent::VirtualKeyRotated {
                        new_fingerprint, ..
                    },
                    Some(t),
                ) => t.key_fingerprint = new_fingerprint.clone(),
                (TeamEvent::VirtualKeyRevealed { .. }, Some(_)) => {}
                (TeamEvent::TeamDeleted { .. }, Some(t)) => t.status = TeamStatus::Deleted,
            }
        }
        team
    }
}
