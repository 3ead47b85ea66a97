//! The event log as an audit trail: events filtered by organization, team, aggregate, type,
//! actor and time, in global-position order, a page at a time. Read straight from `events`
//! (not a read model), so what it shows is what was recorded. Payloads carry no secrets (virtual
//! keys live encrypted outside the log; events name them by fingerprint).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use store::event_log::StoredEvent;

/// What to look for; every field narrows the answer.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub organization_id: Option<String>,
    pub team_id: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Leave out usage records (one per LLM call) — a team's history of changes.
    pub without_usage: bool,
    /// Continue after this global position.
    pub after: Option<i64>,
}

/// The team an event concerns, if any: a team's own events, and usage, alerts and jobs by the
/// team named in their payload (every such payload is `{"Variant": {..., "team_id": ...}}`).
const TEAM_OF_EVENT: &str = "(case when e.aggregate_type = 'Team' then e.aggregate_id
        else (select v ->> 'team_id' from json_each(e.payload) as x(k, v) limit 1) end)";

/// Up to `limit` events matching `filter`, oldest first.
pub async fn events(
    pool: &PgPool,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new(
        "select global_position, tx_id::text as tx_text, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
           from events e where true",
    );
    if let Some(after) = filter.after {
        query.push(" and e.global_position > ").push_bind(after);
    }
    if let Some(team) = &filter.team_id {
        query
            .push(" and ")
            .push(TEAM_OF_EVENT)
            .push(" = ")
            .push_bind(team.clone());
    }
    if let Some(organization) = &filter.organization_id {
        // The organization's own events, and those of every team it has had.
        query
            .push(" and ((e.aggregate_type = 'Organization' and e.aggregate_id = ")
            .push_bind(organization.clone())
            .push(") or ")
            .push(TEAM_OF_EVENT)
            .push(" in (select team_id from teams where organization_id = ")
            .push_bind(organization.clone())
            .push("))");
    }
    if let Some(kind) = &filter.aggregate_type {
        query
            .push(" and e.aggregate_type = ")
            .push_bind(kind.clone());
    }
    if let Some(id) = &filter.aggregate_id {
        query.push(" and e.aggregate_id = ").push_bind(id.clone());
    }
    if let Some(event_type) = &filter.event_type {
        query
            .push(" and e.event_type = ")
            .push_bind(event_type.clone());
    }
    if let Some(actor) = &filter.actor {
        query
            .push(" and e.metadata ->> 'actor' = ")
            .push_bind(actor.clone());
    }
    if let Some(from) = filter.from {
        query.push(" and e.recorded_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" and e.recorded_at < ").push_bind(to);
    }
    if filter.without_usage {
        query.push(" and e.aggregate_type <> 'Usage'");
    }
    query
        .push(" order by e.global_position limit ")
        .push_bind(limit);
    let rows = query.build().fetch_all(pool).await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// A team's usage by model in `[from, to)` as the log stood at `as_of`: only records appended
/// by then count. Computed from the events themselves, not from the usage read model.
pub async fn usage_as_of(
    pool: &PgPool,
    team_id: &str,
    as_of: DateTime<Utc>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<crate::reports::UsageBucket>, sqlx::Error> {
    sqlx::query_as(
        "select u ->> 'model' as key, count(*) as requests,
                count(*) filter (where u ->> 'status' = 'failure') as failed_requests,
                coalesce(sum((u ->> 'prompt_tokens')::bigint), 0)::bigint as prompt_tokens,
                coalesce(sum((u ->> 'completion_tokens')::bigint), 0)::bigint as completion_tokens,
                coalesce(sum((u ->> 'cached_tokens')::bigint), 0)::bigint as cached_tokens,
                coalesce(sum((u ->> 'provider_cost')::numeric), 0) as provider_cost,
                coalesce(sum((u ->> 'price')::numeric), 0) as price
           from (select e.payload -> 'UsageRecorded' as u from events e
                  where e.aggregate_type = 'Usage'
                    and e.payload -> 'UsageRecorded' ->> 'team_id' = $1
                    and e.recorded_at <= $2) r
          where ($3::timestamptz is null or (u ->> 'occurred_at')::timestamptz >= $3)
            and ($4::timestamptz is null or (u ->> 'occurred_at')::timestamptz < $4)
          group by 1 order by 8 desc, 1",
    )
    .bind(team_id)
    .bind(as_of)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// A team's total spend (at its price) from records appended by `as_of`.
pub async fn spend_as_of(
    pool: &PgPool,
    team_id: &str,
    as_of: DateTime<Utc>,
) -> Result<rust_decimal::Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "select coalesce(sum((e.payload -> 'UsageRecorded' ->> 'price')::numeric), 0) from events e
          where e.aggregate_type = 'Usage' and e.payload -> 'UsageRecorded' ->> 'team_id' = $1
            and e.recorded_at <= $2",
    )
    .bind(team_id)
    .bind(as_of)
    .fetch_one(pool)
    .await
}

/// The models of each named group as of `as_of` (a group deleted by then has none).
pub async fn group_models_as_of(
    pool: &PgPool,
    groups: &[String],
    as_of: DateTime<Utc>,
) -> Result<Vec<(String, Vec<String>)>, sqlx::Error> {
    // The newest event of each group up to then says what it held.
    sqlx::query_as(
        "select distinct on (e.aggregate_id) e.aggregate_id,
                coalesce(array(select json_array_elements_text(v -> 'models')), '{}')
           from events e, lateral (select v from json_each(e.payload) as x(k, v) limit 1) p
          where e.aggregate_type = 'ModelGroup' and e.aggregate_id = any($1) and e.recorded_at <= $2
          order by e.aggregate_id, e.sequence desc",
    )
    .bind(groups)
    .bind(as_of)
    .fetch_all(pool)
    .await
}
