//! Usage: one record per LLM request, priced at the team's markup, and the budget thresholds
//! that spend crosses. Each record is its own single-event stream keyed by the request id, so
//! the event store's primary key makes recording the same request twice a no-op.

mod budget;
mod endpoint;
mod period;
mod record;
mod worst_case;

pub use budget::{BUDGET_ALERT_AGGREGATE, BudgetEvent, BudgetState, THRESHOLDS, alert_stream_id};
pub use endpoint::{
    COMPLETIONS_DEFAULT_MAX_TOKENS, Endpoint, Limits, MAX_BEST_OF, TOOL_PROMPT_TOKENS,
};
pub use period::{DayRange, Period, PeriodError, PeriodPlan};
pub use record::{
    HoldPart, RequestId, USAGE_AGGREGATE, USAGE_RECORDED_VERSION, UsageError, UsageEvent,
    UsageInput, UsageRecord, UsageSource, UsageStatus, price_of, stream_id,
};
pub use worst_case::{
    BodyError, DEFAULT_MAX_TOKENS, MAX_CHOICES, MAX_TOKENS_LIMIT, TokenPrices, WorstCase,
    check_bounded, check_litellm_fields, normalize, worst_case,
};
