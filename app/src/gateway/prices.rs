//! Per-token prices of LiteLLM's models (from `/model/info`), refreshed in the background so no
//! request waits on LiteLLM for them; hard mode trusts them only while they are younger than a
//! bound.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::usage::TokenPrices;
use litellm::LitellmClient;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::usage::litellm_rows::decimal;

/// How often prices are read again, and how soon after a failed read.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Hard mode refuses once the prices are older than this (LiteLLM unreachable for a while).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// What the book knows of a model's prices, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceLookup {
    Priced(TokenPrices),
    /// LiteLLM serves the model without input and output prices.
    Unpriced,
    /// No read has succeeded yet, or the last one is older than the bound.
    Unavailable {
        age: Option<Duration>,
    },
}

#[derive(Default)]
struct Cached {
    by_model: HashMap<String, Option<TokenPrices>>,
    loaded_at: Option<Instant>,
}

#[derive(Clone)]
pub struct PriceBook {
    client: LitellmClient,
    cache: Arc<RwLock<Cached>>,
    max_age: Duration,
}

impl PriceBook {
    pub fn new(client: LitellmClient, max_age: Duration) -> Self {
        Self {
            client,
            cache: Arc::default(),
            max_age,
        }
    }

    /// The model's prices as last read; never waits on LiteLLM. Prices older than the bound
    /// count as unavailable; a model LiteLLM did not list counts as unpriced.
    pub fn lookup(&self, model: &str) -> PriceLookup {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let age = cache.loaded_at.map(|at| at.elapsed());
        match age {
            Some(age) if age <= self.max_age => match cache.by_model.get(model) {
                Some(Some(prices)) => PriceLookup::Priced(*prices),
                _ => PriceLookup::Unpriced,
            },
            // Stale prices may still serve soft mode (`last_known`), never hard mode.
            _ => PriceLookup::Unavailable { age },
        }
    }

    /// How long ago the prices were last read (`None`: never), and whether that is fresh
    /// enough for hard mode.
    pub fn freshness(&self) -> (Option<Duration>, bool) {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let age = cache.loaded_at.map(|at| at.elapsed());
        (age, age.is_some_and(|age| age <= self.max_age))
    }

    /// The model's last known prices, whatever their age.
    pub fn last_known(&self, model: &str) -> Option<TokenPrices> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.by_model.get(model).copied().flatten()
    }

    /// Reads every model's prices from LiteLLM; returns how many models it lists.
    pub async fn refresh(&self) -> Result<usize, litellm::LitellmError> {
        let infos = self.client.model_infos().await?;
        let by_model: HashMap<String, Option<TokenPrices>> = infos
            .into_iter()
            .map(|(name, info)| {
                let price = |field: &str| match &info[field] {
                    Value::Null => None,
                    value => decimal(value),
                };
                // LiteLLM reports a model it cannot price with null or zero prices, and then
                // bills it at zero: to hard mode, both mean "no known price".
                let prices = price("input_cost_per_token")
                    .zip(price("output_cost_per_token"))
                    .filter(|(input, output)| !(input.is_zero() && output.is_zero()))
                    .map(|(input, output)| TokenPrices { input, output });
                (name, prices)
            })
            .collect();
        let count = by_model.len();
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.by_model = by_model;
        cache.loaded_at = Some(Instant::now());
        Ok(count)
    }

    /// Refreshes every `every` until shut down (sooner after a failure).
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            let pause = match self.refresh().await {
                Ok(_) => every,
                Err(error) => {
                    tracing::warn!(%error, "model prices could not be read from LiteLLM");
                    RETRY_AFTER_FAILURE.min(every)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
