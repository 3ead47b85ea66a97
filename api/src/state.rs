use std::sync::Arc;
use std::time::Duration;

use domain::organization::Organization;
use postgres_es::PostgresCqrs;
use projections::progress::ProgressSignal;
use sqlx::PgPool;

use crate::auth::AdminKey;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub admin_key: Arc<AdminKey>,
    pub organizations: Arc<PostgresCqrs<Organization>>,
    pub progress: ProgressSignal,
    pub read_wait_timeout: Duration,
}
