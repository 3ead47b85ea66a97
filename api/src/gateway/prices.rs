//! Per-token prices of LiteLLM's models (from `/model/info`), kept in memory and refreshed
//! at most once a minute or when a model is missing. Budget holds are computed from them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use litellm::LitellmClient;
use rust_decimal::Decimal;
use tokio::sync::RwLock;

use crate::usage::litellm_rows::decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prices {
    pub input: Decimal,
    pub output: Decimal,
}

#[derive(Default)]
struct Cached {
    by_model: HashMap<String, Prices>,
    loaded_at: Option<Instant>,
}

#[derive(Clone)]
pub struct PriceBook {
    client: LitellmClient,
    cache: Arc<RwLock<Cached>>,
}

const REFRESH: Duration = Duration::from_secs(60);

impl PriceBook {
    pub fn new(client: LitellmClient) -> Self {
        Self {
            client,
            cache: Arc::default(),
        }
    }

    /// The model's prices; `None` if LiteLLM does not price it (or cannot be reached).
    pub async fn of(&self, model: &str) -> Option<Prices> {
        {
            let cache = self.cache.read().await;
            let fresh = cache.loaded_at.is_some_and(|at| at.elapsed() < REFRESH);
            if let Some(prices) = cache.by_model.get(model)
                && fresh
            {
                return Some(*prices);
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have refreshed it while this one waited.
        let recent = cache
            .loaded_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if !recent {
            match self.client.model_infos().await {
                Ok(infos) => {
                    cache.by_model = infos
                        .into_iter()
                        .filter_map(|(name, info)| {
                            let input = decimal(&info["input_cost_per_token"])?;
                            let output = decimal(&info["output_cost_per_token"])?;
                            Some((name, Prices { input, output }))
                        })
                        .collect();
                    cache.loaded_at = Some(Instant::now());
                }
                Err(error) => tracing::warn!(%error, "model prices could not be read from LiteLLM"),
            }
        }
        cache.by_model.get(model).copied()
    }
}
