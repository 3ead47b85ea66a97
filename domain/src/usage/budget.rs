//! A team's budget as folded from credits and usage, and the threshold alerts it raises (pure).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::team::TeamId;

use super::record::RequestId;

/// Percentages of a team's credits whose crossing is an event.
pub const THRESHOLDS: [u32; 2] = [80, 100];

/// The aggregate type of threshold-alert streams.
pub const BUDGET_ALERT_AGGREGATE: &str = "BudgetAlert";

/// One stream per team, credit level and threshold, holding at most one event: the event
/// store's primary key is what makes an alert fire once, whoever tries to write it.
pub fn alert_stream_id(team_id: &str, credit_level: i64, threshold: u32) -> String {
    format!("{team_id}:{credit_level}:{threshold}")
}

/// A team's budget as the budget projector folds it: credits, spend at the team's price, and
/// which thresholds have already been announced at the current credit level.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BudgetState {
    pub credits: Money,
    pub spend: Money,
    /// Bumped by every credit grant; a grant re-arms the thresholds.
    pub credit_level: i64,
    /// The highest threshold announced at `credit_level` (0: none).
    pub alerted_percent: u32,
}

impl BudgetState {
    pub fn new(credits: Money) -> Self {
        Self {
            credits,
            ..Self::default()
        }
    }

    /// Credits now total `credits_total`: a new credit level.
    pub fn grant(&mut self, credits_total: Money) {
        self.credits = credits_total;
        self.credit_level += 1;
        self.alerted_percent = 0;
    }

    pub fn add_spend(&mut self, price: Money) {
        self.spend = Money::from_decimal(self.spend.as_decimal() + price.as_decimal());
    }

    pub fn remaining(&self) -> Decimal {
        self.credits.as_decimal() - self.spend.as_decimal()
    }

    /// Spend as a percentage of credits, to two places; `None` without credits.
    pub fn percent_used(&self) -> Option<Decimal> {
        let credits = self.credits.as_decimal();
        (!credits.is_zero())
            .then(|| (self.spend.as_decimal() * Decimal::ONE_HUNDRED / credits).round_dp(2))
    }

    fn crossed(&self, threshold: u32) -> bool {
        let credits = self.credits.as_decimal();
        let spend = self.spend.as_decimal();
        if credits.is_zero() {
            return spend > Decimal::ZERO;
        }
        spend * Decimal::ONE_HUNDRED >= credits * Decimal::from(threshold)
    }

    /// Thresholds crossed but not yet announced at this credit level, lowest first. The caller
    /// records the events, then calls `mark_alerted`.
    pub fn due_alerts(&self) -> Vec<u32> {
        THRESHOLDS
            .into_iter()
            .filter(|t| *t > self.alerted_percent && self.crossed(*t))
            .collect()
    }

    pub fn mark_alerted(&mut self, threshold: u32) {
        self.alerted_percent = self.alerted_percent.max(threshold);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BudgetEvent {
    ThresholdCrossed {
        team_id: TeamId,
        threshold_percent: u32,
        credit_level: i64,
        credits: Money,
        spend: Money,
        /// The request whose spend crossed it, when usage (not a credit change) did.
        request_id: Option<RequestId>,
        crossed_at: DateTime<Utc>,
    },
}

impl DomainEvent for BudgetEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ThresholdCrossed { .. } => "ThresholdCrossed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn money(s: &str) -> Money {
        Money::from_str(s).unwrap()
    }

    #[test]
    fn thresholds_fire_once_in_order_and_credits_rearm_them() {
        let mut b = BudgetState::new(money("100"));
        b.add_spend(money("79.99"));
        assert!(b.due_alerts().is_empty());
        b.add_spend(money("0.01"));
        assert_eq!(b.due_alerts(), vec![80]);
        b.mark_alerted(80);
        assert!(b.due_alerts().is_empty());
        b.add_spend(money("30"));
        assert_eq!(b.due_alerts(), vec![100]);
        b.mark_alerted(100);
        assert!(b.due_alerts().is_empty());
        assert_eq!(b.remaining(), Decimal::from_str("-10").unwrap());
        assert_eq!(b.percent_used(), Some(Decimal::from(110)));

        b.grant(money("200"));
        assert_eq!(b.credit_level, 1);
        assert!(b.due_alerts().is_empty(), "55% of the new level");
        b.add_spend(money("50"));
        assert_eq!(b.due_alerts(), vec![80]);
    }

    #[test]
    fn one_large_request_crosses_both_thresholds() {
        let mut b = BudgetState::new(money("10"));
        b.add_spend(money("12"));
        assert_eq!(b.due_alerts(), vec![80, 100]);
    }

    #[test]
    fn a_team_without_credits_crosses_at_its_first_spend() {
        let mut b = BudgetState::new(Money::ZERO);
        assert!(b.due_alerts().is_empty());
        assert_eq!(b.percent_used(), None);
        b.add_spend(money("0.000001"));
        assert_eq!(b.due_alerts(), vec![80, 100]);
    }
}
