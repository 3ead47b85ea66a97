//! Model groups: named sets of LiteLLM model names that teams are given access to.

mod aggregate;

pub use aggregate::{
    ModelGroup, ModelGroupCommand, ModelGroupError, ModelGroupEvent, ModelGroupLookups,
    ModelGroupServices,
};

/// A group holds at most this many models.
pub const MAX_MODELS: usize = 100;
