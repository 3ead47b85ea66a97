//! The typed answers of the admin API (and the enums requests share with them): each type is both
//! what a handler returns or parses (serde) and what the OpenAPI document describes (utoipa), so
//! the two cannot drift apart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use projections::budgets::{AlertRow, BudgetRow};
use projections::jobs::JobRow;
use projections::model_groups::ModelGroupRow;
use projections::organizations::OrganizationRow;
use projections::reports::UsageBucket;
use projections::teams::TeamRow;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema::SchemaFormat};

use crate::extract::decimal_json;

/// An exact decimal (money, a percentage), sent as a JSON number written from its own digits
/// (`84.5`, `0.000000000123`): never through floating point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amount(pub Decimal);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        decimal_json(self.0).serialize(serializer)
    }
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::Custom("decimal".into())))
            .description(Some("An exact decimal, as a JSON number such as 84.5"))
            .into()
    }
}

impl ToSchema for Amount {}

/// How a team's budget is enforced: `hard` (requests that could overspend are refused with
/// 429) or `soft` (requests continue; threshold alerts fire).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetMode {
    Hard,
    Soft,
}

impl From<domain::team::BudgetMode> for BudgetMode {
    fn from(mode: domain::team::BudgetMode) -> Self {
        match mode {
            domain::team::BudgetMode::Hard => Self::Hard,
            domain::team::BudgetMode::Soft => Self::Soft,
        }
    }
}

impl BudgetMode {
    /// A mode as a read model stores it (text).
    pub fn stored(text: &str) -> Self {
        domain::team::BudgetMode::from_stored(text).into()
    }
}

/// Whether a recorded LLM call succeeded, as integrations report it.
#[derive(Debug, Clone, Copy, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageStatus {
    Success,
    Failure,
}

impl From<UsageStatus> for domain::usage::UsageStatus {
    fn from(status: UsageStatus) -> Self {
        match status {
            UsageStatus::Success => Self::Success,
            UsageStatus::Failure => Self::Failure,
        }
    }
}

/// An organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct Organization {
    pub organization_id: String,
    pub name: String,
    pub litellm_organization_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Global position of the last change.
    pub position: i64,
}

impl From<OrganizationRow> for Organization {
    fn from(row: OrganizationRow) -> Self {
        Self {
            organization_id: row.organization_id,
            name: row.name,
            litellm_organization_id: row.litellm_organization_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
            deleted_at: row.deleted_at,
            position: row.last_position,
        }
    }
}

/// A page of organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationPage {
    pub organizations: Vec<Organization>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
    /// Organizations in all.
    pub total: i64,
}

/// A new organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationCreated {
    pub organization_id: String,
    pub name: String,
    pub litellm_organization_id: Option<String>,
    pub position: i64,
}

/// A renamed organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationRenamed {
    pub organization_id: String,
    pub name: String,
    pub position: i64,
}

/// A deleted organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationDeleted {
    pub organization_id: String,
    /// Always true.
    pub deleted: bool,
    pub position: i64,
}

/// A model group.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelGroup {
    pub group_name: String,
    pub description: Option<String>,
    pub models: Vec<String>,
    /// Whether the models were checked against LiteLLM's catalog when last set.
    pub verified: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    pub position: i64,
}

impl From<ModelGroupRow> for ModelGroup {
    fn from(row: ModelGroupRow) -> Self {
        Self {
            group_name: row.group_name,
            description: row.description,
            models: row.models,
            verified: row.verified,
            created_at: row.created_at,
            updated_at: row.updated_at,
            position: row.last_position,
        }
    }
}

/// A page of model groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelGroupPage {
    pub model_groups: Vec<ModelGroup>,
    pub next_cursor: Option<String>,
}

/// A new model group.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelGroupCreated {
    pub group_name: String,
    pub models: Vec<String>,
    pub description: Option<String>,
    pub position: i64,
}

/// A model group's new models.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelGroupModelsSet {
    pub group_name: String,
    pub models: Vec<String>,
    pub position: i64,
}

/// A deleted model group.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelGroupDeleted {
    pub group_name: String,
    /// Always true.
    pub deleted: bool,
    pub position: i64,
}

/// A team as the team endpoints show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Team {
    pub team_id: String,
    pub organization_id: String,
    pub team_alias: String,
    pub model_groups: Vec<String>,
    /// The models of its groups, which its key may call.
    pub allowed_models: Vec<String>,
    pub credits: Amount,
    pub spend: Amount,
    pub remaining_budget: Amount,
    pub budget_mode: BudgetMode,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub markup_percent: Amount,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    pub key_fingerprint: String,
    /// How many times its keys were revealed.
    pub keys_revealed: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    /// Global position of the last change.
    pub position: i64,
}

/// A team as it stood at `as_of`, rebuilt from its events (`GET /api/teams/{id}?as_of=`),
/// with the models its groups held then, its spend then, and every change made since.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamAsOf {
    pub team_id: String,
    pub organization_id: String,
    pub team_alias: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    pub model_groups: Vec<String>,
    pub allowed_models: Vec<String>,
    pub credits: Amount,
    pub spend: Amount,
    pub remaining_budget: Amount,
    pub budget_mode: BudgetMode,
    pub rate_limits: RateLimitsAsOf,
    pub markup_percent: Amount,
    pub key_fingerprint: String,
    #[schema(value_type = String, format = DateTime)]
    pub as_of: DateTime<Utc>,
    pub changed_since: Vec<ChangeSince>,
}

/// Requests and tokens per minute then; `null` is no limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitsAsOf {
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
}

/// A change to the team after `as_of`, and who made it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeSince {
    pub position: i64,
    pub event_type: String,
    pub actor: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
}

/// `GET /api/teams/{id}`: the team now, or as it stood at `as_of`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TeamOrAsOf {
    Now(Box<Team>),
    AsOf(Box<TeamAsOf>),
}

impl From<&TeamRow> for Team {
    fn from(row: &TeamRow) -> Self {
        Self {
            team_id: row.team_id.clone(),
            organization_id: row.organization_id.clone(),
            team_alias: row.team_alias.clone(),
            model_groups: row.model_groups.clone(),
            allowed_models: row.allowed_models.clone(),
            credits: Amount(row.credits),
            spend: Amount(row.spend),
            remaining_budget: Amount(row.remaining_budget()),
            budget_mode: BudgetMode::stored(&row.budget_mode),
            rpm_limit: row.rpm_limit,
            tpm_limit: row.tpm_limit,
            markup_percent: Amount(row.markup_percent),
            status: row.status.clone(),
            key_fingerprint: row.key_fingerprint.clone(),
            keys_revealed: row.keys_revealed,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by.clone(),
            position: row.last_position,
        }
    }
}

/// A page of teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamPage {
    pub teams: Vec<Team>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A new team: the team and its virtual key, shown in full this once (and on reveal).
#[derive(Serialize, ToSchema)]
pub struct TeamCreated {
    pub team_id: String,
    pub organization_id: String,
    pub team_alias: String,
    pub virtual_key: String,
    pub key_fingerprint: String,
    pub model_groups: Vec<String>,
    pub allowed_models: Vec<String>,
    pub credits: Amount,
    pub remaining_budget: Amount,
    pub budget_mode: BudgetMode,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub markup_percent: Amount,
    /// `active`.
    pub status: String,
    pub position: i64,
}

impl From<&app::teams::CreatedTeam> for TeamCreated {
    fn from(created: &app::teams::CreatedTeam) -> Self {
        let team = &created.team;
        Self {
            team_id: team.team_id.as_str().to_owned(),
            organization_id: team.organization_id.as_str().to_owned(),
            team_alias: team.team_alias.as_str().to_owned(),
            virtual_key: created.key.expose().to_owned(),
            key_fingerprint: team.key_fingerprint.as_str().to_owned(),
            model_groups: team
                .model_groups
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            allowed_models: created.allowed_models.clone(),
            credits: Amount(team.credits.as_decimal()),
            remaining_budget: Amount(team.credits.as_decimal()),
            budget_mode: team.budget_mode.into(),
            rpm_limit: team.rate_limits.rpm_limit,
            tpm_limit: team.rate_limits.tpm_limit,
            markup_percent: Amount(team.markup_percent.as_decimal()),
            status: "active".to_owned(),
            position: created.position,
        }
    }
}

impl std::fmt::Debug for TeamCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The virtual key never reaches a log through this type.
        f.debug_struct("TeamCreated")
            .field("team_id", &self.team_id)
            .field("key_fingerprint", &self.key_fingerprint)
            .finish_non_exhaustive()
    }
}

/// A job and what its LLM calls cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct Job {
    pub job_id: String,
    pub team_id: String,
    pub job_type: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub metadata: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub calls: i64,
    pub failed_calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// What the team is charged (with its markup).
    pub cost: Amount,
    /// What LiteLLM reported.
    pub provider_cost: Amount,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_call_at: Option<DateTime<Utc>>,
}

impl From<&JobRow> for Job {
    fn from(row: &JobRow) -> Self {
        let end = row.ended_at.unwrap_or_else(Utc::now);
        Self {
            job_id: row.job_id.clone(),
            team_id: row.team_id.clone(),
            job_type: row.job_type.clone(),
            status: row.status.clone(),
            metadata: row.metadata.clone(),
            result: row.result.clone(),
            error: row.error.clone(),
            created_at: row.created_at,
            ended_at: row.ended_at,
            duration_ms: (end - row.created_at).num_milliseconds().max(0),
            calls: row.calls,
            failed_calls: row.failed_calls,
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            total_tokens: row.prompt_tokens + row.completion_tokens,
            cost: Amount(row.price),
            provider_cost: Amount(row.provider_cost),
            last_call_at: row.last_call_at,
        }
    }
}

/// A page of a team's jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_cursor: Option<String>,
}

/// A period as reports state it: `[from, to)`, either end open.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodBounds {
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
}

impl From<&domain::usage::Period> for PeriodBounds {
    fn from(period: &domain::usage::Period) -> Self {
        Self {
            from: period.from,
            to: period.to,
        }
    }
}

/// Usage summed over a period: at the team's price and at LiteLLM's cost, with tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageTotals {
    /// At the team's price (with its markup).
    pub total_spend: Amount,
    /// What LiteLLM reported.
    pub provider_cost: Amount,
    pub request_count: i64,
    pub failed_requests: i64,
    pub total_tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
}

impl From<&UsageBucket> for UsageTotals {
    fn from(bucket: &UsageBucket) -> Self {
        Self {
            total_spend: Amount(bucket.price),
            provider_cost: Amount(bucket.provider_cost),
            request_count: bucket.requests,
            failed_requests: bucket.failed_requests,
            total_tokens: bucket.total_tokens(),
            prompt_tokens: bucket.prompt_tokens,
            completion_tokens: bucket.completion_tokens,
            cached_tokens: bucket.cached_tokens,
        }
    }
}

/// One model's share of a period's usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelUsage {
    pub requests: i64,
    /// At the team's price.
    pub cost: Amount,
    pub provider_cost: Amount,
    pub tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
}

impl From<&UsageBucket> for ModelUsage {
    fn from(bucket: &UsageBucket) -> Self {
        Self {
            requests: bucket.requests,
            cost: Amount(bucket.price),
            provider_cost: Amount(bucket.provider_cost),
            tokens: bucket.total_tokens(),
            prompt_tokens: bucket.prompt_tokens,
            completion_tokens: bucket.completion_tokens,
            cached_tokens: bucket.cached_tokens,
        }
    }
}

/// Per-model buckets summed into totals and keyed by model.
pub fn by_model(buckets: &[UsageBucket]) -> (UsageTotals, BTreeMap<String, ModelUsage>) {
    let mut total = UsageBucket::default();
    let mut models = BTreeMap::new();
    for bucket in buckets {
        total.add(bucket);
        models.insert(bucket.key.clone(), ModelUsage::from(bucket));
    }
    (UsageTotals::from(&total), models)
}

/// A team's usage in a period by model, with its budget (live, or as of an instant).
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamUsage {
    pub team_id: String,
    pub organization_id: String,
    /// Present when the answer is as of an instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<DateTime<Utc>>,
    pub period: PeriodBounds,
    #[serde(flatten)]
    pub totals: UsageTotals,
    pub credits: Amount,
    pub remaining_budget: Amount,
    /// Spend as a percentage of the credits (null without credits); live answers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Amount>)]
    pub percent_used: Option<Option<Amount>>,
    pub budget_mode: BudgetMode,
    pub models_used: BTreeMap<String, ModelUsage>,
}

/// A team's budget as the budget endpoints show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Budget {
    pub team_id: String,
    pub credits: Amount,
    pub spend: Amount,
    pub remaining: Amount,
    /// Held by requests in flight (hard mode) until their usage is in `spend`.
    pub held: Amount,
    pub percent_used: Option<Amount>,
    pub budget_mode: BudgetMode,
    pub credit_level: i64,
    pub request_count: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_usage_at: Option<DateTime<Utc>>,
}

impl From<&BudgetRow> for Budget {
    fn from(row: &BudgetRow) -> Self {
        let state = row.state();
        Self {
            team_id: row.team_id.clone(),
            credits: Amount(row.credits),
            spend: Amount(row.spend),
            remaining: Amount(state.remaining()),
            held: Amount(row.held),
            percent_used: state.percent_used().map(Amount),
            budget_mode: BudgetMode::stored(&row.budget_mode),
            credit_level: row.credit_level,
            request_count: row.request_count,
            last_usage_at: row.last_usage_at,
        }
    }
}

/// A threshold a team's spend crossed (80 % or 100 % of a credit level).
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetAlert {
    pub team_id: String,
    pub threshold_percent: i32,
    pub credit_level: i64,
    pub credits: Amount,
    pub spend: Amount,
    pub request_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub crossed_at: DateTime<Utc>,
    pub position: i64,
}

impl From<&AlertRow> for BudgetAlert {
    fn from(alert: &AlertRow) -> Self {
        Self {
            team_id: alert.team_id.clone(),
            threshold_percent: alert.threshold_percent,
            credit_level: alert.credit_level,
            credits: Amount(alert.credits),
            spend: Amount(alert.spend),
            request_id: alert.request_id.clone(),
            crossed_at: alert.crossed_at,
            position: alert.position,
        }
    }
}

/// A team's budget and the alerts it raised.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamBudget {
    #[serde(flatten)]
    pub budget: Budget,
    pub alerts: Vec<BudgetAlert>,
}

/// Threshold alerts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetAlerts {
    pub alerts: Vec<BudgetAlert>,
}

/// A command on an existing team done: the team, the position of its event, and what changed.
#[derive(Serialize, ToSchema)]
pub struct TeamChanged {
    pub team_id: String,
    /// Global position of the command's event (a read-your-writes hint).
    pub position: i64,
    #[serde(flatten)]
    pub change: TeamChange,
}

/// What a team command changed, in the fields of its answer.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TeamChange {
    Credits {
        amount: Amount,
    },
    Assigned {
        assigned: String,
    },
    Unassigned {
        unassigned: String,
    },
    BudgetMode {
        budget_mode: BudgetMode,
    },
    /// Both limits are always present (null: no limit), so this shape is told from the others.
    RateLimits {
        #[schema(required = true)]
        rpm_limit: Option<u64>,
        #[schema(required = true)]
        tpm_limit: Option<u64>,
    },
    Markup {
        markup_percent: Amount,
    },
    /// `active`, `suspended` or `deleted`.
    Status {
        status: String,
    },
    /// A new or revealed key, shown in full.
    Key {
        virtual_key: String,
        key_fingerprint: String,
    },
}

/// An operator's role: `owner` (everything, accounts too), `admin` (everything but accounts),
/// `billing` (credits, plans, reports, exports), `support` (reads, suspend, resume, rotate),
/// `viewer` (reads).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Owner,
    Admin,
    Billing,
    Support,
    Viewer,
}

impl From<RoleName> for domain::account::Role {
    fn from(role: RoleName) -> Self {
        use domain::account::Role;
        match role {
            RoleName::Owner => Role::Owner,
            RoleName::Admin => Role::Admin,
            RoleName::Billing => Role::Billing,
            RoleName::Support => Role::Support,
            RoleName::Viewer => Role::Viewer,
        }
    }
}

/// An operator's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    /// `owner`, `admin`, `billing`, `support` or `viewer`.
    pub role: String,
    /// The organizations the role holds for; `null`: every one.
    pub organizations: Option<Vec<String>>,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub position: i64,
}

impl From<&projections::accounts::AccountRow> for Account {
    fn from(row: &projections::accounts::AccountRow) -> Self {
        Self {
            account_id: row.account_id.clone(),
            email: row.email.clone(),
            display_name: row.display_name.clone(),
            role: row.role.clone(),
            organizations: row.organizations.clone(),
            disabled: row.disabled,
            created_at: row.created_at,
            created_by: row.created_by.clone(),
            position: row.last_position,
        }
    }
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    pub next_cursor: Option<String>,
}

/// What a command on an account wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountChanged {
    pub account_id: String,
    pub position: i64,
}

/// An account's API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub key_id: String,
    pub account_id: String,
    pub name: String,
    pub role: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// An account's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKey>,
}

/// A key just issued: `api_key` is shown this once and never again (only a digest is kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyIssued {
    pub key_id: String,
    pub account_id: String,
    pub api_key: String,
    pub name: String,
    pub role: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    pub position: i64,
}

/// What the caller's role allows beyond reading.
#[derive(Debug, Serialize, ToSchema)]
pub struct Abilities {
    pub manage: bool,
    pub billing: bool,
    pub suspend: bool,
    pub rotate_key: bool,
    pub reveal_key: bool,
    pub accounts: bool,
}

/// The caller of `/api/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// As recorded in the audit.
    pub actor: String,
    /// `owner` for the master key.
    pub role: String,
    /// The organizations the caller reaches; `null`: every one.
    pub organizations: Option<Vec<String>>,
    /// The account, when an account's key or session is used.
    pub account: Option<Account>,
    pub may: Abilities,
}
