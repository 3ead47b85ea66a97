//! The OpenAPI 3.1 document, built from the handlers' `#[utoipa::path]` attributes as the router
//! registers them (`utoipa_axum::routes!`), so a route cannot exist without its description.
//! Served at `/openapi.json`; `saas-api openapi` prints it.

use std::collections::BTreeMap;

use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

/// Names of the security schemes, as handlers' `security(...)` attributes use them.
pub const ADMIN_KEY: &str = "admin_key";
pub const ADMIN_SESSION: &str = "admin_session";
pub const TEAM_KEY: &str = "team_key";
pub const PUSH_TOKEN: &str = "push_token";

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
    )
)]
pub struct ApiDoc;

/// The body of every error response.
#[derive(ToSchema)]
#[allow(dead_code)] // documents `ApiError`'s JSON; never built
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `team_not_found`.
    code: String,
    /// What went wrong, for a person.
    message: String,
}

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
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "An exact decimal, as a JSON number or a string: `84.50` or `\"84.50\"`",
        ))
        .into()
}

/// The document as served: built once from the router's registered operations.
pub fn document(api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(api)
}

/// How a team's budget is enforced.
#[derive(ToSchema)]
#[schema(as = BudgetMode, rename_all = "lowercase")]
#[allow(dead_code)]
pub enum BudgetModeSchema {
    /// Requests that would overspend are refused (429).
    Hard,
    /// Requests continue; threshold alerts fire.
    Soft,
}

/// Whether a recorded LLM call succeeded.
#[derive(ToSchema)]
#[schema(as = UsageStatus, rename_all = "lowercase")]
#[allow(dead_code)]
pub enum UsageStatusSchema {
    Success,
    Failure,
}

// Response shapes of the main resources. The handlers build their JSON by hand (exact money
// as JSON numbers), so these describe it; the fuzzer checks every answer against them, which
// keeps the two in step.

/// An exact decimal, sent as a JSON number (`84.5`).
type Decimal = f64;

/// A team as the team endpoints show it.
#[derive(ToSchema)]
#[schema(as = Team)]
#[allow(dead_code)]
pub struct TeamSchema {
    team_id: String,
    organization_id: String,
    team_alias: String,
    model_groups: Vec<String>,
    /// The models of its groups, which its key may call.
    allowed_models: Vec<String>,
    credits: Decimal,
    spend: Option<Decimal>,
    remaining_budget: Decimal,
    budget_mode: BudgetModeSchema,
    rpm_limit: Option<u64>,
    tpm_limit: Option<u64>,
    markup_percent: Decimal,
    /// `active`, `suspended` or `deleted`.
    status: String,
    key_fingerprint: Option<String>,
    /// Global position of the last change.
    position: i64,
}

/// A new team: the team and its virtual key, shown in full this once (and on reveal).
#[derive(ToSchema)]
#[schema(as = TeamCreated)]
#[allow(dead_code)]
pub struct TeamCreatedSchema {
    team_id: String,
    organization_id: String,
    team_alias: String,
    virtual_key: String,
    key_fingerprint: String,
    model_groups: Vec<String>,
    allowed_models: Vec<String>,
    credits: Decimal,
    remaining_budget: Decimal,
    budget_mode: BudgetModeSchema,
    rpm_limit: Option<u64>,
    tpm_limit: Option<u64>,
    markup_percent: Decimal,
    status: String,
    position: i64,
}

/// A page of teams.
#[derive(ToSchema)]
#[schema(as = TeamPage)]
#[allow(dead_code)]
pub struct TeamPageSchema {
    teams: Vec<TeamSchema>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// An organization.
#[derive(ToSchema)]
#[schema(as = Organization)]
#[allow(dead_code)]
pub struct OrganizationSchema {
    organization_id: String,
    name: String,
    litellm_organization_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    created_by: String,
    #[schema(format = DateTime)]
    deleted_at: Option<String>,
    position: i64,
}

/// A page of organizations.
#[derive(ToSchema)]
#[schema(as = OrganizationPage)]
#[allow(dead_code)]
pub struct OrganizationPageSchema {
    organizations: Vec<OrganizationSchema>,
    next_cursor: Option<String>,
    /// Organizations in all.
    total: i64,
}

/// A model group.
#[derive(ToSchema)]
#[schema(as = ModelGroup)]
#[allow(dead_code)]
pub struct ModelGroupSchema {
    group_name: String,
    description: Option<String>,
    models: Vec<String>,
    /// Whether the models were checked against LiteLLM's catalog when last set.
    verified: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    position: i64,
}

/// A page of model groups.
#[derive(ToSchema)]
#[schema(as = ModelGroupPage)]
#[allow(dead_code)]
pub struct ModelGroupPageSchema {
    model_groups: Vec<ModelGroupSchema>,
    next_cursor: Option<String>,
}

/// A job and what its LLM calls cost.
#[derive(ToSchema)]
#[schema(as = Job)]
#[allow(dead_code)]
pub struct JobSchema {
    job_id: String,
    team_id: String,
    job_type: String,
    /// `running`, `completed` or `failed`.
    status: String,
    metadata: serde_json::Value,
    result: Option<serde_json::Value>,
    error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    duration_ms: i64,
    calls: i64,
    failed_calls: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    /// What the team is charged (with its markup).
    cost: Decimal,
    /// What LiteLLM reported.
    provider_cost: Decimal,
    #[schema(format = DateTime)]
    last_call_at: Option<String>,
}
