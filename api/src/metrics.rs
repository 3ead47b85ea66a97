//! Prometheus metrics at `GET /metrics`. Counters and histograms are recorded where things
//! happen (HTTP middleware, commands, the gateway, the ledger, the reconciler); gauges that
//! describe the database (consumer lag, sync states, pool use) are read when scraped, so they
//! are true for the whole cluster of replicas, not one process's view.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiResult;
use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (one per process, however many apps a test
/// binary starts).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("saas_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .expect("buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Counts and times every request by its route template (never the raw path: ids would make
/// a series per team).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    counter!("saas_http_requests_total", &labels).increment(1);
    histogram!("saas_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: refreshes the database gauges, then renders everything.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format (consumer lag counted up to 10,000 events)", body = String, content_type = "text/plain"),
        crate::openapi::ApiErrors,
    ),
    security((), ("metrics_token" = [])))]
pub async fn render(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = &state.metrics_token
        && !token.is_bearer_of(&headers)
    {
        return Err(crate::error::ApiError::unauthorized(
            "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`",
        ));
    }
    // Counted up to a cap, as `/ready` counts: a lagging system costs a scrape no more.
    for lag in projections::progress::lag(&state.pool).await? {
        gauge!("saas_consumer_lag_events", "consumer" => lag.consumer)
            .set(lag.pending_events as f64);
    }
    let states: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from litellm_sync group by status")
            .fetch_all(&state.pool)
            .await?;
    for status in ["in_sync", "pending", "failing"] {
        let count = states
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        gauge!("saas_litellm_sync_teams", "status" => status).set(count as f64);
    }
    let (near, spent) = projections::budgets::budget_levels(&state.pool).await?;
    gauge!("saas_teams_budget_used", "level" => "80").set(near as f64);
    gauge!("saas_teams_budget_used", "level" => "100").set(spent as f64);
    let size = state.pool.size() as f64;
    let idle = state.pool.num_idle() as f64;
    gauge!("saas_db_pool_connections", "state" => "idle").set(idle);
    gauge!("saas_db_pool_connections", "state" => "in_use").set(size - idle);
    let body = handle().render();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response())
}
