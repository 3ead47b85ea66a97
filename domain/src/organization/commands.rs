//! What can be asked of an organization.

use super::values::{LitellmOrganizationId, OrganizationId, OrganizationName};

/// What an admin can ask of an organization. The aggregate id is the organization id.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    Create {
        organization_id: OrganizationId,
        name: OrganizationName,
        litellm_organization_id: Option<LitellmOrganizationId>,
    },
    Rename {
        name: OrganizationName,
    },
    /// Refused while the organization has teams that are not deleted.
    Delete,
}
