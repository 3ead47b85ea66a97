//! Exact money: USD as a decimal, never floating point. Events store it as a string.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("{field} must be a decimal number, e.g. 84.50")]
    NotANumber { field: &'static str },
    #[error("{field} must be greater than 0")]
    NotPositive { field: &'static str },
    #[error("{field} must not be negative")]
    Negative { field: &'static str },
    #[error("{field} must be at most {max}")]
    TooLarge { field: &'static str, max: Decimal },
    #[error("{field} may have at most {max} decimal places")]
    TooPrecise { field: &'static str, max: u32 },
}

/// An amount of US dollars.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Self = Self(Decimal::ZERO);
    /// The largest single amount (credits added, initial credits): one billion USD.
    pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
    /// Credits are given in at most micro-dollars.
    pub const MAX_SCALE: u32 = 6;

    pub fn from_decimal(value: Decimal) -> Self {
        Self(value.normalize())
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// Parses a credit amount as typed by an admin: `> 0`, `<= MAX_AMOUNT`, at most 6 decimals.
    pub fn parse_amount(field: &'static str, raw: &str) -> Result<Self, MoneyError> {
        let value = Self::parse_non_negative(field, raw)?;
        if value.0.is_zero() {
            return Err(MoneyError::NotPositive { field });
        }
        Ok(value)
    }

    /// Like `parse_amount` but allows zero (e.g. a team created without credits).
    pub fn parse_non_negative(field: &'static str, raw: &str) -> Result<Self, MoneyError> {
        let value = parse_decimal(field, raw)?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative { field });
        }
        if value > Self::MAX_AMOUNT {
            return Err(MoneyError::TooLarge {
                field,
                max: Self::MAX_AMOUNT,
            });
        }
        if value.normalize().scale() > Self::MAX_SCALE {
            return Err(MoneyError::TooPrecise {
                field,
                max: Self::MAX_SCALE,
            });
        }
        Ok(Self::from_decimal(value.abs()))
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self::from_decimal)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self::from_decimal)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Parses plain (`84.50`) or scientific (`1e2`) decimal text exactly.
pub(crate) fn parse_decimal(field: &'static str, raw: &str) -> Result<Decimal, MoneyError> {
    let raw = raw.trim();
    let parsed = if raw.contains(['e', 'E']) {
        Decimal::from_scientific(raw)
    } else {
        Decimal::from_str_exact(raw)
    };
    match parsed {
        Ok(value) if !raw.is_empty() && raw.len() <= 40 => Ok(value),
        _ => Err(MoneyError::NotANumber { field }),
    }
}

/// Rounded down to the micro-dollar, the precision LiteLLM's budgets are sent with.
pub fn micro_floor(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::ToZero)
}

/// A percentage such as a markup: `0 <= p <= max`, at most 4 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(Decimal);

impl Percent {
    pub const ZERO: Self = Self(Decimal::ZERO);
    pub const MAX_MARKUP: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

    pub fn parse_markup(field: &'static str, raw: &str) -> Result<Self, MoneyError> {
        let value = parse_decimal(field, raw)?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative { field });
        }
        if value > Self::MAX_MARKUP {
            return Err(MoneyError::TooLarge {
                field,
                max: Self::MAX_MARKUP,
            });
        }
        if value.normalize().scale() > 4 {
            return Err(MoneyError::TooPrecise { field, max: 4 });
        }
        Ok(Self(value.abs().normalize()))
    }

    /// A markup read back from a read model, which only ever holds values `parse_markup` accepted.
    pub fn from_stored(value: Decimal) -> Self {
        Self(value)
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// What an amount at the team's price is in provider cost (LiteLLM's budgets count provider
    /// cost): `amount / factor`, rounded down to the micro-dollar so LiteLLM never allows more.
    pub fn provider_share(&self, amount: Decimal) -> Decimal {
        micro_floor(amount / self.factor())
    }

    /// What a provider cost is multiplied by to get the team's price: 1 + markup / 100.
    pub fn factor(&self) -> Decimal {
        Decimal::ONE + self.0 / Decimal::ONE_HUNDRED
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_non_negative("amount", s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_parsed_exactly() {
        let a = Money::parse_amount("amount", "0.1").unwrap();
        let b = Money::parse_amount("amount", "0.2").unwrap();
        assert_eq!(
            a.checked_add(b).unwrap(),
            Money::parse_amount("amount", "0.3").unwrap()
        );
        assert_eq!(
            Money::parse_amount("amount", "84.50").unwrap().to_string(),
            "84.5"
        );
        assert_eq!(
            Money::parse_amount("amount", "1e2").unwrap().to_string(),
            "100"
        );
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert_eq!(
            Money::parse_amount("amount", "0"),
            Err(MoneyError::NotPositive { field: "amount" })
        );
        assert_eq!(
            Money::parse_amount("amount", "-5"),
            Err(MoneyError::Negative { field: "amount" })
        );
        assert!(matches!(
            Money::parse_amount("amount", "1000000000.01"),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            Money::parse_amount("amount", "1.0000001"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse_amount("amount", "abc"),
            Err(MoneyError::NotANumber { .. })
        ));
        assert!(matches!(
            Money::parse_amount("amount", "1e400"),
            Err(MoneyError::NotANumber { .. })
        ));
        assert!(matches!(
            Money::parse_amount("amount", "NaN"),
            Err(MoneyError::NotANumber { .. })
        ));
        assert!(Money::parse_non_negative("credits", "0").is_ok());
    }

    #[test]
    fn markup_is_bounded() {
        assert!(Percent::parse_markup("markup_percent", "25.5").is_ok());
        assert!(Percent::parse_markup("markup_percent", "-1").is_err());
        assert!(Percent::parse_markup("markup_percent", "1000.01").is_err());
    }

    #[test]
    fn provider_shares_go_through_the_markup_and_round_down() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let markup = |s: &str| Percent::parse_markup("markup_percent", s).unwrap();
        assert_eq!(markup("0").provider_share(d("84.50")), d("84.5"));
        assert_eq!(markup("20").provider_share(d("120")), d("100"));
        assert_eq!(markup("200").provider_share(d("100")), d("33.333333"));
    }
}
