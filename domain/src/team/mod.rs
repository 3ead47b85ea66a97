//! Teams: a customer's unit of LLM access, with credits, a budget mode, limits and a key.

mod aggregate;
mod commands;
mod error;
mod events;
mod history;
mod values;

pub use aggregate::{Team, TeamLookups, TeamServices, TeamStatus};
pub use commands::{NewTeam, TeamCommand};
pub use error::TeamError;
pub use events::TeamEvent;
pub use history::TeamAsOf;
pub use values::{BudgetMode, KeyFingerprint, RateLimits, TeamAlias, TeamId};

#[cfg(test)]
mod tests;
