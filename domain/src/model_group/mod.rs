//! Model groups: named sets of LiteLLM model names that teams are given access to.

mod aggregate;

pub use aggregate::{
    Catalog, ModelCatalog, ModelGroup, ModelGroupCommand, ModelGroupError, ModelGroupEvent,
    ModelGroupLookups, ModelGroupServices, UnknownModel, closest_model,
};

/// A group holds at most this many models.
pub const MAX_MODELS: usize = 100;
