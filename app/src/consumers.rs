//! The registry of every consumer of the log this service runs: the read models, the reactors
//! (LiteLLM sync marker, alert webhooks) and the sealer, so `serve`, start-up registration and
//! tests name the same set.

use std::sync::Arc;

use projections::Projector;

/// Every consumer but the sealer, which needs the key its seals are made with.
pub fn without_sealer() -> Vec<Arc<dyn Projector>> {
    let mut all = projections::read_models();
    all.push(Arc::new(crate::sync::marker::LitellmSyncMarker));
    all.push(Arc::new(crate::webhooks::alerts::AlertWebhooks));
    all
}

/// Every consumer, the sealer (keyed by `seal_key`) last.
pub fn all(seal_key: [u8; 32]) -> Vec<Arc<dyn Projector>> {
    let mut all = without_sealer();
    all.push(Arc::new(projections::seals::Sealer::new(seal_key)));
    all
}

/// The names of every consumer, for registering their checkpoints before anything is served.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<_> = without_sealer().iter().map(|p| p.name()).collect();
    names.push(projections::seals::SEALER);
    names
}
