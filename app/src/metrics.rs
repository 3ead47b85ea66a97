//! Counters of what the use cases do (commands, gateway calls, usage records, sync failures),
//! recorded where it happens; `api` installs the Prometheus recorder and serves `/metrics`.

use metrics::counter;

use crate::error::ErrorKind;

/// A command enum's variant name (its `Debug` text up to the first field; never logged).
pub fn variant(command: &impl std::fmt::Debug) -> String {
    let debug = format!("{command:?}");
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

/// A command's outcome: `ok`, `rejected` (the caller's mistake, 4xx) or `error`.
pub fn command(kind: &'static str, variant: &str, failure: Option<ErrorKind>) {
    let outcome = match failure {
        None => "ok",
        Some(kind) if kind.is_callers() => "rejected",
        Some(_) => "error",
    };
    counter!("saas_commands_total", "command" => format!("{kind}.{variant}"), "outcome" => outcome)
        .increment(1);
}

/// Every gateway outcome and usage source, for `register`.
const GATEWAY_OUTCOMES: [&str; 5] = [
    "served",
    "budget_exceeded",
    "model_not_allowed",
    "upstream_error",
    "unreachable",
];
const USAGE_SOURCES: [&str; 5] = ["gateway", "gateway_estimate", "spend_logs", "push", "api"];

/// Starts every counter an alert reads at zero, so `increase()` and ratios work from the first
/// scrape rather than from the first failure (deploy/prometheus/alerts.yml).
pub fn register() {
    for outcome in GATEWAY_OUTCOMES {
        counter!("saas_gateway_requests_total", "outcome" => outcome).increment(0);
    }
    for source in USAGE_SOURCES {
        counter!("saas_usage_records_total", "source" => source).increment(0);
    }
    counter!("saas_litellm_sync_failures_total").increment(0);
    for when in ["ahead", "on_demand"] {
        counter!("saas_gateway_lease_grants_total", "when" => when).increment(0);
    }
}

/// A hard-budget lease asked of the database: `ahead` (fetched while the current one still
/// admits) or `on_demand` (a request waits for it).
pub fn lease_granted(when: &'static str) {
    counter!("saas_gateway_lease_grants_total", "when" => when).increment(1);
}

/// A call through the gateway: `served`, `budget_exceeded`, `model_not_allowed`,
/// `upstream_error`, `unreachable`.
pub fn gateway(outcome: &'static str) {
    counter!("saas_gateway_requests_total", "outcome" => outcome).increment(1);
}

/// Usage records appended, by the path that reported them.
pub fn usage_recorded(source: &'static str, count: usize) {
    counter!("saas_usage_records_total", "source" => source).increment(count as u64);
}

/// A LiteLLM management call of the reconciler failed.
pub fn sync_failure() {
    counter!("saas_litellm_sync_failures_total").increment(1);
}
