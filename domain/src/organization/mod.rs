//! Organizations: the customers a SaaS operator sells LLM access to; teams belong to one.

mod aggregate;
mod commands;
mod error;
mod events;
mod values;

pub use aggregate::{Organization, OrganizationLookups, OrganizationServices};
pub use commands::OrganizationCommand;
pub use error::OrganizationError;
pub use events::OrganizationEvent;
pub use values::{LitellmOrganizationId, OrganizationId, OrganizationName};
