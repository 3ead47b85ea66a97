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

/// How the consumers step, one runner per group: the admin read models and the reactors'
/// markers together, one transaction per batch for all of them (a command's events then cost
/// one read-model transaction, not seven); usage (the bulk of the log, which would hold the
/// others back), budgets (it appends alerts, so readers wait for its transactions) and the
/// sealer each alone.
pub fn groups(seal_key: [u8; 32]) -> Vec<Vec<Arc<dyn Projector>>> {
    let (alone, together): (Vec<_>, Vec<_>) = all(seal_key).into_iter().partition(|p| {
        p.appends_events()
            || p.name() == projections::usage::PROJECTOR
            || p.name() == projections::seals::SEALER
    });
    let mut groups = vec![together];
    groups.extend(alone.into_iter().map(|p| vec![p]));
    groups
}

/// The names of every consumer, for registering their checkpoints before anything is served.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<_> = without_sealer().iter().map(|p| p.name()).collect();
    names.push(projections::seals::SEALER);
    names
}
