//! The domain's lookups, answered from read models that are first brought up to date with the
//! log, so a command never decides on a stale view.

use async_trait::async_trait;
use domain::model_group::{Catalog, ModelCatalog, ModelGroupLookups};
use domain::model_name::GroupName;
use domain::organization::{OrganizationId, OrganizationLookups};
use domain::team::TeamLookups;
use projections::progress::{self, ProgressSignal};
use projections::projector::Projector;
use sqlx::PgPool;

#[derive(Clone)]
pub struct ReadModelLookups {
    pub pool: PgPool,
    pub progress: ProgressSignal,
    pub timeout: std::time::Duration,
}

impl ReadModelLookups {
    async fn fresh(&self, projector: &dyn Projector) -> Result<(), String> {
        match progress::wait_caught_up(&self.pool, &self.progress, projector, self.timeout).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "the {} read model is behind; retry shortly",
                projector.name()
            )),
            Err(error) => Err(format!("database error: {error}")),
        }
    }
}

#[async_trait]
impl TeamLookups for ReadModelLookups {
    async fn organization_is_live(&self, id: &OrganizationId) -> Result<Option<bool>, String> {
        self.fresh(&projections::organizations::OrganizationsProjector)
            .await?;
        let row = projections::organizations::get(&self.pool, id.as_str())
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.map(|org| org.deleted_at.is_none()))
    }

    async fn missing_model_groups(&self, groups: &[GroupName]) -> Result<Vec<GroupName>, String> {
        self.fresh(&projections::model_groups::ModelGroupsProjector)
            .await?;
        let names: Vec<String> = groups.iter().map(|g| g.as_str().to_owned()).collect();
        let missing = projections::model_groups::missing(&self.pool, &names)
            .await
            .map_err(|e| e.to_string())?;
        Ok(groups
            .iter()
            .filter(|g| missing.iter().any(|m| m == g.as_str()))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl ModelGroupLookups for ReadModelLookups {
    async fn teams_using(&self, group: &GroupName) -> Result<Vec<String>, String> {
        self.fresh(&projections::teams::TeamsProjector).await?;
        projections::teams::using_group(&self.pool, group.as_str())
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl OrganizationLookups for ReadModelLookups {
    async fn live_teams(&self, id: &OrganizationId) -> Result<Vec<String>, String> {
        self.fresh(&projections::teams::TeamsProjector).await?;
        projections::teams::live_in_organization(&self.pool, id.as_str())
            .await
            .map_err(|e| e.to_string())
    }
}

/// LiteLLM's catalog for model-name checks; `None` when no LiteLLM is configured.
pub struct LitellmCatalog {
    pub client: Option<litellm::LitellmClient>,
}

#[async_trait]
impl ModelCatalog for LitellmCatalog {
    async fn catalog(&self) -> Catalog {
        let Some(client) = &self.client else {
            return Catalog::NotConfigured;
        };
        match client.model_names().await {
            Ok(names) => Catalog::Known(names),
            Err(error) => {
                tracing::warn!(%error, "LiteLLM's model catalog is unavailable; accepting names unverified");
                Catalog::Unavailable(error.to_string())
            }
        }
    }
}
