//! What happened to an organization: the events its stream holds.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::values::{LitellmOrganizationId, OrganizationId, OrganizationName};

/// Facts about an organization. Stored externally tagged (`{"OrganizationCreated": {...}}`);
/// the `unique_claim_rules` table reads `litellm_organization_id` from that shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    OrganizationCreated {
        organization_id: OrganizationId,
        name: OrganizationName,
        litellm_organization_id: Option<LitellmOrganizationId>,
    },
    OrganizationRenamed {
        organization_id: OrganizationId,
        old_name: OrganizationName,
        name: OrganizationName,
    },
    OrganizationDeleted {
        organization_id: OrganizationId,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrganizationCreated { .. } => "OrganizationCreated",
            Self::OrganizationRenamed { .. } => "OrganizationRenamed",
            Self::OrganizationDeleted { .. } => "OrganizationDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
