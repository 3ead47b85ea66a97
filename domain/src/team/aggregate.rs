//! The team aggregate: the state folded from its events and the rules its commands must pass.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::model_name::GroupName;
use crate::money::{Money, Percent};
use crate::organization::OrganizationId;

use super::{BudgetMode, KeyFingerprint, RateLimits, TeamCommand, TeamError, TeamEvent, TeamId};

/// The most credits a team may hold in total: a hundred billion USD.
const MAX_BALANCE: rust_decimal::Decimal =
    rust_decimal::Decimal::from_parts(1215752192, 23, 0, false, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamStatus {
    #[default]
    Active,
    Suspended,
    Deleted,
}

impl TeamStatus {
    /// As the API and the read model write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

/// What team commands need to know from other aggregates' read models.
#[async_trait]
pub trait TeamLookups: Send + Sync {
    /// `Ok(Some(true))`: exists and live; `Ok(Some(false))`: deleted; `Ok(None)`: unknown.
    async fn organization_is_live(&self, id: &OrganizationId) -> Result<Option<bool>, String>;
    /// The given groups that do not exist (or were deleted).
    async fn missing_model_groups(&self, groups: &[GroupName]) -> Result<Vec<GroupName>, String>;
}

pub struct TeamServices {
    pub lookups: Box<dyn TeamLookups>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Team {
    id: Option<TeamId>,
    status: TeamStatus,
    model_groups: Vec<GroupName>,
    credits: Money,
    budget_mode: BudgetMode,
    rate_limits: RateLimits,
    markup_percent: Percent,
    key_fingerprint: Option<KeyFingerprint>,
}

impl Team {
    /// The id of a team that exists and is not deleted.
    fn live(&self) -> Result<TeamId, TeamError> {
        match (&self.id, self.status) {
            (None, _) => Err(TeamError::NotFound),
            (Some(_), TeamStatus::Deleted) => Err(TeamError::Deleted),
            (Some(id), _) => Ok(id.clone()),
        }
    }

    fn fingerprint(&self) -> KeyFingerprint {
        self.key_fingerprint
            .clone()
            .unwrap_or_else(|| KeyFingerprint::new(String::new()))
    }
}

async fn check_groups(services: &TeamServices, groups: &[GroupName]) -> Result<(), TeamError> {
    let missing = services
        .lookups
        .missing_model_groups(groups)
        .await
        .map_err(TeamError::Lookup)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TeamError::UnknownModelGroups(
            missing.iter().map(|g| g.as_str().to_owned()).collect(),
        ))
    }
}

impl Aggregate for Team {
    const TYPE: &'static str = "Team";
    type Command = TeamCommand;
    type Event = TeamEvent;
    type Error = TeamError;
    type Services = TeamServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let TeamCommand::Create(new) = command {
            if self.id.is_some() {
                return Err(TeamError::AlreadyExists);
            }
            let org = new.organization_id.as_str().to_owned();
            match services
                .lookups
                .organization_is_live(&new.organization_id)
                .await
                .map_err(TeamError::Lookup)?
            {
                None => return Err(TeamError::OrganizationNotFound(org)),
                Some(false) => return Err(TeamError::OrganizationDeleted(org)),
                Some(true) => {}
            }
            check_groups(services, &new.model_groups).await?;
            let mut model_groups = new.model_groups;
            model_groups.dedup();
            let event = TeamEvent::TeamCreated {
                team_id: new.team_id,
                organization_id: new.organization_id,
                team_alias: new.team_alias,
                model_groups,
                credits: new.credits,
                budget_mode: new.budget_mode,
                rate_limits: new.rate_limits,
                markup_percent: new.markup_percent,
                key_fingerprint: new.key_fingerprint,
            };
            sink.write(event, self).await;
            return Ok(());
        }

        let team_id = self.live()?;
        let event = match command {
            TeamCommand::Create(_) => unreachable!("handled above"),
            TeamCommand::AddCredits { amount, reason } => {
                let credits_total = self
                    .credits
                    .checked_add(amount)
                    .filter(|total| total.as_decimal() <= MAX_BALANCE)
                    .ok_or(TeamError::CreditsOverflow)?;
                Some(TeamEvent::CreditsAdded {
                    team_id,
                    amount,
                    credits_total,
                    reason,
                })
            }
            TeamCommand::AssignModelGroup { group } => {
                if self.model_groups.contains(&group) {
                    None
                } else {
                    check_groups(services, std::slice::from_ref(&group)).await?;
                    let mut model_groups = self.model_groups.clone();
                    model_groups.push(group.clone());
                    Some(TeamEvent::ModelGroupAssigned {
                        team_id,
                        group,
                        model_groups,
                    })
                }
            }
            TeamCommand::UnassignModelGroup { group } => {
                if !self.model_groups.contains(&group) {
                    return Err(TeamError::GroupNotAssigned(group.as_str().to_owned()));
                }
                let model_groups = self
                    .model_groups
                    .iter()
                    .filter(|g| **g != group)
                    .cloned()
                    .collect();
                Some(TeamEvent::ModelGroupUnassigned {
                    team_id,
                    group,
                    model_groups,
                })
            }
            TeamCommand::SetBudgetMode { budget_mode } => (budget_mode != self.budget_mode)
                .then_some(TeamEvent::BudgetModeSet {
                    team_id,
                    budget_mode,
                }),
            TeamCommand::SetRateLimits { rate_limits } => (rate_limits != self.rate_limits)
                .then_some(TeamEvent::RateLimitsSet {
                    team_id,
                    rate_limits,
                }),
            TeamCommand::SetMarkup { markup_percent } => (markup_percent != self.markup_percent)
                .then_some(TeamEvent::MarkupSet {
                    team_id,
                    markup_percent,
                }),
            TeamCommand::Suspend { reason } => (self.status == TeamStatus::Active)
                .then_some(TeamEvent::TeamSuspended { team_id, reason }),
            TeamCommand::Resume => {
                (self.status == TeamStatus::Suspended).then_some(TeamEvent::TeamResumed { team_id })
            }
            TeamCommand::RotateKey { new_fingerprint } => Some(TeamEvent::VirtualKeyRotated {
                team_id,
                old_fingerprint: self.fingerprint(),
                new_fingerprint,
            }),
            TeamCommand::RecordKeyRevealed => Some(TeamEvent::VirtualKeyRevealed {
                team_id,
                key_fingerprint: self.fingerprint(),
            }),
            TeamCommand::Delete => Some(TeamEvent::TeamDeleted {
                team_id,
                key_fingerprint: self.fingerprint(),
            }),
        };
        // Commands that would change nothing append nothing, so client retries are harmless.
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TeamEvent::TeamCreated {
                team_id,
                model_groups,
                credits,
                budget_mode,
                rate_limits,
                markup_percent,
                key_fingerprint,
                ..
            } => {
                self.id = Some(team_id);
                self.status = TeamStatus::Active;
                self.model_groups = model_groups;
                self.credits = credits;
                self.budget_mode = budget_mode;
                self.rate_limits = rate_limits;
                self.markup_percent = markup_percent;
                self.key_fingerprint = Some(key_fingerprint);
            }
            TeamEvent::CreditsAdded { credits_total, .. } => self.credits = credits_total,
            TeamEvent::ModelGroupAssigned { model_groups, .. }
            | TeamEvent::ModelGroupUnassigned { model_groups, .. } => {
                self.model_groups = model_groups
            }
            TeamEvent::BudgetModeSet { budget_mode, .. } => self.budget_mode = budget_mode,
            TeamEvent::RateLimitsSet { rate_limits, .. } => self.rate_limits = rate_limits,
            TeamEvent::MarkupSet { markup_percent, .. } => self.markup_percent = markup_percent,
            TeamEvent::TeamSuspended { .. } => self.status = TeamStatus::Suspended,
            TeamEvent::TeamResumed { .. } => self.status = TeamStatus::Active,
            TeamEvent::VirtualKeyRotated {
                new_fingerprint, ..
            } => self.key_fingerprint = Some(new_fingerprint),
            TeamEvent::VirtualKeyRevealed { .. } => {}
            TeamEvent::TeamDeleted { .. } => self.status = TeamStatus::Deleted,
        }
    }
}
