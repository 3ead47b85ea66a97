//! The HTTP surface: one router, thin handlers, shared middleware.

mod accounts;
mod audit;
mod dashboard;
mod gateway;
mod health;
mod ingest;
mod model_groups;
mod organizations;
mod report_shapes;
mod teams;
mod usage;
mod webhooks;

use app::error::ErrorCode;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use std::sync::LazyLock;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::consistency::POSITION_HEADER;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::state::AppState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every documented route; the OpenAPI document is built from the same registrations.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(crate::metrics::render))
        .routes(routes!(openapi_json))
        .merge(accounts::router())
        .merge(organizations::router())
        .merge(model_groups::router())
        .merge(teams::router())
        .merge(usage::router())
        .merge(ingest::router())
        .merge(gateway::router())
        .merge(webhooks::router())
        .merge(audit::router())
        .merge(dashboard::router())
        .merge(crate::panel::router())
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::document(api_routes().into_openapi())
}

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON.as_str())
}

pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::middleware))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), body_deadline))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|request: &Request| {
                            let route = request
                                .extensions()
                                .get::<MatchedPath>()
                                .map(|p| p.as_str().to_owned())
                                .unwrap_or_else(|| request.uri().path().to_owned());
                            let request_id = request
                                .extensions()
                                .get::<RequestId>()
                                .and_then(|id| id.header_value().to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!("request", method = %request.method(), route, request_id)
                        })
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Micros)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone())),
        )
        .with_state(state)
}

/// Every request's body must arrive within `HTTP_BODY_TIMEOUT_SECS` of its headers.
async fn body_deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = crate::extract::deadline_body(body, state.body_timeout);
    next.run(Request::from_parts(parts, body)).await
}

async fn not_found() -> ApiError {
    ApiError::not_found(ErrorCode::RouteNotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

pub(crate) fn position_header(position: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(POSITION_HEADER, HeaderValue::from(position));
    headers
}

/// `?limit=&cursor=` for every list endpoint.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Page size, 1 to 200 (50 by default).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 50;

impl ListParams {
    /// The page size and the position to continue after.
    pub(crate) fn validate(&self) -> Result<(i64, Option<i64>), ApiError> {
        self.bounded(DEFAULT_PAGE, MAX_PAGE)
    }

    /// Like `validate`, with a route's own default and largest page.
    pub(crate) fn bounded(&self, default: i64, max: i64) -> Result<(i64, Option<i64>), ApiError> {
        let limit = self.limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("limit must be between 1 and {max}"),
            ));
        }
        let after = self
            .cursor
            .as_deref()
            .map(|raw| {
                raw.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(
                        ErrorCode::InvalidCursor,
                        "cursor must be a next_cursor value from a previous page",
                    )
                })
            })
            .transpose()?;
        Ok((limit, after))
    }
}

/// Cuts a `limit + 1` fetch to `limit` rows and the cursor of the next page, if any.
pub(crate) fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        let next = rows.last().map(|row| position(row).to_string());
        (rows, next)
    } else {
        (rows, None)
    }
}
