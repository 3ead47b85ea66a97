//! Every team rule, given/when/then.

use async_trait::async_trait;
use cqrs_es::test::TestFramework;

use super::*;
use crate::model_name::GroupName;
use crate::money::{Money, Percent};
use crate::organization::OrganizationId;

struct World {
    org_live: Option<bool>,
    groups: Vec<&'static str>,
}

#[async_trait]
impl TeamLookups for World {
    async fn organization_is_live(&self, _id: &OrganizationId) -> Result<Option<bool>, String> {
        Ok(self.org_live)
    }

    async fn missing_model_groups(&self, groups: &[GroupName]) -> Result<Vec<GroupName>, String> {
        Ok(groups
            .iter()
            .filter(|g| !self.groups.contains(&g.as_str()))
            .cloned()
            .collect())
    }
}

fn world() -> TeamServices {
    TeamServices {
        lookups: Box::new(World {
            org_live: Some(true),
            groups: vec!["gpt", "claude"],
        }),
    }
}

fn with_org(org_live: Option<bool>) -> TeamServices {
    TeamServices {
        lookups: Box::new(World {
            org_live,
            groups: vec!["gpt", "claude"],
        }),
    }
}

fn tid() -> TeamId {
    TeamId::parse("team_1").unwrap()
}

fn group(name: &str) -> GroupName {
    GroupName::parse(name).unwrap()
}

fn usd(raw: &str) -> Money {
    Money::parse_non_negative("amount", raw).unwrap()
}

fn fp(raw: &str) -> KeyFingerprint {
    KeyFingerprint::new(raw.to_owned())
}

fn new_team(groups: &[&str]) -> NewTeam {
    NewTeam {
        team_id: tid(),
        organization_id: OrganizationId::parse("org_1").unwrap(),
        team_alias: TeamAlias::parse("Support bot").unwrap(),
        model_groups: groups.iter().map(|g| group(g)).collect(),
        credits: usd("84.50"),
        budget_mode: BudgetMode::Hard,
        rate_limits: RateLimits::new(Some(60), None).unwrap(),
        markup_percent: Percent::ZERO,
        key_fingerprint: fp("aaaa"),
    }
}

fn created() -> TeamEvent {
    let n = new_team(&["gpt"]);
    TeamEvent::TeamCreated {
        team_id: n.team_id,
        organization_id: n.organization_id,
        team_alias: n.team_alias,
        model_groups: n.model_groups,
        credits: n.credits,
        budget_mode: n.budget_mode,
        rate_limits: n.rate_limits,
        markup_percent: n.markup_percent,
        key_fingerprint: n.key_fingerprint,
    }
}

fn deleted() -> TeamEvent {
    TeamEvent::TeamDeleted {
        team_id: tid(),
        key_fingerprint: fp("aaaa"),
    }
}

type T = TestFramework<Team>;

#[test]
fn create_records_the_team() {
    T::with(world())
        .given_no_previous_events()
        .when(TeamCommand::Create(Box::new(new_team(&["gpt"]))))
        .then_expect_events(vec![created()]);
}

#[test]
fn create_refuses_a_duplicate_team_id() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::Create(Box::new(new_team(&["gpt"]))))
        .then_expect_error(TeamError::AlreadyExists);
}

#[test]
fn create_refuses_unknown_or_deleted_organizations() {
    T::with(with_org(None))
        .given_no_previous_events()
        .when(TeamCommand::Create(Box::new(new_team(&["gpt"]))))
        .then_expect_error(TeamError::OrganizationNotFound("org_1".into()));
    T::with(with_org(Some(false)))
        .given_no_previous_events()
        .when(TeamCommand::Create(Box::new(new_team(&["gpt"]))))
        .then_expect_error(TeamError::OrganizationDeleted("org_1".into()));
}

#[test]
fn create_refuses_unknown_model_groups() {
    T::with(world())
        .given_no_previous_events()
        .when(TeamCommand::Create(Box::new(new_team(&["gpt", "nope"]))))
        .then_expect_error(TeamError::UnknownModelGroups(vec!["nope".into()]));
}

#[test]
fn adding_credits_records_the_new_total() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::AddCredits {
            amount: usd("15.5"),
            reason: Some("top-up".into()),
        })
        .then_expect_events(vec![TeamEvent::CreditsAdded {
            team_id: tid(),
            amount: usd("15.5"),
            credits_total: usd("100"),
            reason: Some("top-up".into()),
        }]);
}

#[test]
fn credits_cannot_exceed_the_maximum_balance() {
    let mut events = vec![created()];
    for _ in 0..100 {
        events.push(TeamEvent::CreditsAdded {
            team_id: tid(),
            amount: usd("1000000000"),
            credits_total: usd("1000000000"),
            reason: None,
        });
    }
    let at_max = TeamEvent::CreditsAdded {
        team_id: tid(),
        amount: usd("1"),
        credits_total: Money::from_decimal(rust_decimal::Decimal::from(100_000_000_000u64)),
        reason: None,
    };
    events.push(at_max);
    T::with(world())
        .given(events)
        .when(TeamCommand::AddCredits {
            amount: usd("0.01"),
            reason: None,
        })
        .then_expect_error(TeamError::CreditsOverflow);
}

#[test]
fn assigning_a_group_extends_the_list_and_reassigning_is_a_no_op() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::AssignModelGroup {
            group: group("claude"),
        })
        .then_expect_events(vec![TeamEvent::ModelGroupAssigned {
            team_id: tid(),
            group: group("claude"),
            model_groups: vec![group("gpt"), group("claude")],
        }]);
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::AssignModelGroup {
            group: group("gpt"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn assigning_an_unknown_group_is_refused() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::AssignModelGroup {
            group: group("nope"),
        })
        .then_expect_error(TeamError::UnknownModelGroups(vec!["nope".into()]));
}

#[test]
fn unassigning_removes_the_group_or_refuses_when_not_assigned() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::UnassignModelGroup {
            group: group("gpt"),
        })
        .then_expect_events(vec![TeamEvent::ModelGroupUnassigned {
            team_id: tid(),
            group: group("gpt"),
            model_groups: vec![],
        }]);
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::UnassignModelGroup {
            group: group("claude"),
        })
        .then_expect_error(TeamError::GroupNotAssigned("claude".into()));
}

#[test]
fn settings_are_recorded_only_when_they_change() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::SetBudgetMode {
            budget_mode: BudgetMode::Soft,
        })
        .then_expect_events(vec![TeamEvent::BudgetModeSet {
            team_id: tid(),
            budget_mode: BudgetMode::Soft,
        }]);
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::SetBudgetMode {
            budget_mode: BudgetMode::Hard,
        })
        .then_expect_events(vec![]);
    let limits = RateLimits::new(Some(10), Some(1000)).unwrap();
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::SetRateLimits {
            rate_limits: limits,
        })
        .then_expect_events(vec![TeamEvent::RateLimitsSet {
            team_id: tid(),
            rate_limits: limits,
        }]);
    let markup = Percent::parse_markup("markup_percent", "20").unwrap();
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::SetMarkup {
            markup_percent: markup,
        })
        .then_expect_events(vec![TeamEvent::MarkupSet {
            team_id: tid(),
            markup_percent: markup,
        }]);
}

#[test]
fn suspend_and_resume_toggle_and_repeat_harmlessly() {
    let suspended = TeamEvent::TeamSuspended {
        team_id: tid(),
        reason: Some("unpaid".into()),
    };
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::Suspend {
            reason: Some("unpaid".into()),
        })
        .then_expect_events(vec![suspended.clone()]);
    T::with(world())
        .given(vec![created(), suspended.clone()])
        .when(TeamCommand::Suspend { reason: None })
        .then_expect_events(vec![]);
    T::with(world())
        .given(vec![created(), suspended])
        .when(TeamCommand::Resume)
        .then_expect_events(vec![TeamEvent::TeamResumed { team_id: tid() }]);
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::Resume)
        .then_expect_events(vec![]);
}

#[test]
fn rotation_records_old_and_new_fingerprints() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::RotateKey {
            new_fingerprint: fp("bbbb"),
        })
        .then_expect_events(vec![TeamEvent::VirtualKeyRotated {
            team_id: tid(),
            old_fingerprint: fp("aaaa"),
            new_fingerprint: fp("bbbb"),
        }]);
}

#[test]
fn revealing_the_key_is_recorded() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::RecordKeyRevealed)
        .then_expect_events(vec![TeamEvent::VirtualKeyRevealed {
            team_id: tid(),
            key_fingerprint: fp("aaaa"),
        }]);
}

#[test]
fn a_deleted_team_accepts_no_commands() {
    T::with(world())
        .given(vec![created()])
        .when(TeamCommand::Delete)
        .then_expect_events(vec![deleted()]);
    for command in [
        TeamCommand::AddCredits {
            amount: usd("1"),
            reason: None,
        },
        TeamCommand::Resume,
        TeamCommand::Delete,
        TeamCommand::RecordKeyRevealed,
        TeamCommand::RotateKey {
            new_fingerprint: fp("c"),
        },
    ] {
        T::with(world())
            .given(vec![created(), deleted()])
            .when(command)
            .then_expect_error(TeamError::Deleted);
    }
}

#[test]
fn commands_on_an_unknown_team_are_refused() {
    T::with(world())
        .given_no_previous_events()
        .when(TeamCommand::AddCredits {
            amount: usd("1"),
            reason: None,
        })
        .then_expect_error(TeamError::NotFound);
}

#[test]
fn stored_budget_modes_read_back_and_anything_else_is_hard() {
    assert_eq!(BudgetMode::from_stored("soft"), BudgetMode::Soft);
    assert_eq!(BudgetMode::from_stored("hard"), BudgetMode::Hard);
    assert_eq!(BudgetMode::from_stored("Soft"), BudgetMode::Hard);
    assert_eq!(BudgetMode::from_stored(""), BudgetMode::Hard);
}
