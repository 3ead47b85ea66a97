//! Operators' accounts: named people with a role, and the API keys they hold, so every command
//! in the log names the person who issued it and access can be narrowed or withdrawn per person.

mod aggregate;
mod commands;
mod error;
mod events;
mod role;
mod values;

pub use aggregate::{Access, Account, KeyRefusal};
pub use commands::AccountCommand;
pub use error::AccountError;
pub use events::AccountEvent;
pub use role::{Permission, Role};
pub use values::{AccountId, ApiKeyId, DisplayName, Email, KeyName};
