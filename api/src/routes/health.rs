//! Liveness and readiness probes (no authentication: orchestrators call them).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Object)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and every migration this binary knows is applied; also
/// reports how far behind each consumer is.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready, with each consumer's lag", body = Object),
        (status = 503, description = "Not ready, with the reason", body = Object),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        )
            .into_response()
    };
    let applied: Vec<i64> = match store::applied_migrations(&state.pool).await {
        Ok(versions) => versions,
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            return not_ready("database unreachable or not migrated".into());
        }
    };
    let expected: Vec<i64> = store::MIGRATOR.iter().map(|m| m.version).collect();
    let missing: Vec<i64> = expected
        .iter()
        .filter(|v| !applied.contains(v))
        .copied()
        .collect();
    if !missing.is_empty() {
        return not_ready(format!("migrations not applied: {missing:?}"));
    }
    let consumers = match projections::progress::lag(&state.pool).await {
        Ok(lag) => lag,
        Err(error) => {
            tracing::warn!(%error, "readiness lag query failed");
            return not_ready("database unreachable".into());
        }
    };
    // Not a condition of readiness (soft-mode teams are served without prices), but hard-mode
    // requests wait for it: reported so a start-up script or an operator can see it.
    let prices = state.prices.as_ref().map(|book| {
        let (age, fresh) = book.freshness();
        json!({"fresh": fresh, "age_secs": age.map(|age| age.as_secs())})
    });
    Json(json!({
        "status": "ready",
        "database": "ok",
        "migrations": {"applied": applied.len(), "expected": expected.len()},
        "consumers": consumers,
        "litellm_prices": prices,
    }))
    .into_response()
}
