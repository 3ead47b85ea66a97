//! The OpenAPI 3.1 document, built from the handlers' `#[utoipa::path]` attributes as the router
//! registers them (`utoipa_axum::routes!`), so a route cannot exist without its description.
//! Served at `/openapi.json`; `saas-api openapi` prints it.

use std::collections::BTreeMap;

use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

/// Names of the security schemes, as handlers' `security(...)` attributes use them.
pub const ADMIN_KEY: &str = "admin_key";
pub const ADMIN_SESSION: &str = "admin_session";
pub const TEAM_KEY: &str = "team_key";
pub const PUSH_TOKEN: &str = "push_token";
pub const METRICS_TOKEN: &str = "metrics_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "saas-litellm",
        description = "Control plane for reselling LLM access through a LiteLLM proxy: \
            organizations, model groups, teams with prepaid credits, budgets and rate limits, \
            usage, audit, and an OpenAI-compatible gateway for the teams' apps. \
            Every error is `{\"error\": {\"code\", \"message\"}}`."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "organizations"), (name = "model groups"), (name = "teams"),
        (name = "usage"), (name = "audit"), (name = "webhooks"),
        (name = "gateway", description = "Called by the teams' apps with their virtual key"),
        (name = "operations"), (name = "admin panel"),
        (name = "accounts", description = "Operators' accounts and API keys (owners only)"),
    )
)]
pub struct ApiDoc;

/// The body of every error response (`ApiError` answers with exactly this).
#[derive(serde::Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// One error: its code and a message.
#[derive(serde::Serialize)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `team_not_found` (`app::error::ErrorCode`).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl utoipa::PartialSchema for ErrorDetail {
    fn schema() -> RefOr<Schema> {
        let codes = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                app::error::ErrorCode::ALL.iter().map(|code| code.as_str()),
            ))
            .description(Some("A stable, machine-readable code, one per reason"));
        ObjectBuilder::new()
            .property("code", codes)
            .required("code")
            .property(
                "message",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("What went wrong, for a person")),
            )
            .required("message")
            .into()
    }
}

impl ToSchema for ErrorDetail {}

/// The error responses every operation can give: a JSON error body for any 4xx or 5xx.
pub struct ApiErrors;

impl utoipa::IntoResponses for ApiErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        ResponsesBuilder::new()
            .response(
                "4XX",
                error("Refused: bad input, missing or wrong credentials, unknown resource, a conflict, or a limit (429 carries Retry-After)"),
            )
            .response(
                "5XX",
                error("Unavailable (503 with Retry-After: the database or LiteLLM is unreachable) or an internal error"),
            )
            .build()
            .into()
    }
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::credentials::ADMIN_KEY_HEADER,
                "The master key (MASTER_KEY)",
            ))),
        );
        components.add_security_scheme(
            ADMIN_SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::panel::session::SESSION_COOKIE,
                "The admin panel's session; changes also need the session's X-CSRF-Token header",
            ))),
        );
        components.add_security_scheme(
            TEAM_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The team's virtual key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            METRICS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "METRICS_TOKEN, when it is set (otherwise /metrics is open)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            PUSH_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "SPEND_PUSH_TOKEN, as LiteLLM's generic_api callback sends it",
                    ))
                    .build(),
            ),
        );
    }
}

/// Schema of `DecimalText`: a JSON number or a numeric string, kept exact.
pub fn decimal_schema() -> RefOr<Schema> {
    crate::request_schemas::exact_decimal()
}

/// The document as served: built once from the router's registered operations.
pub fn document(api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(api)
}
