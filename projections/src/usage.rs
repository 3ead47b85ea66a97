//! The usage read model: one row per recorded request plus per-day, per-model roll-ups, written
//! a batch at a time (ingestion produces thousands of records a second).

use async_trait::async_trait;
use domain::usage::{USAGE_AGGREGATE, UsageEvent, UsageRecord};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "usage";

pub struct UsageProjector;

#[async_trait]
impl Projector for UsageProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&[USAGE_AGGREGATE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["usage_records", "usage_daily"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        insert(tx, &records_of(events)?).await?;
        Ok(())
    }

    /// Rows only, into a copy without its primary key; the roll-ups are summed once at the end
    /// (an upsert per day and model per batch was most of a rebuild's time).
    async fn rebuild_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        copy_in(tx, events).await
    }

    fn bulk_loaded_tables(&self) -> &'static [&'static str] {
        &["usage_records"]
    }

    /// A request recorded under two streams (before and after usage streams were scoped by
    /// team) counts once, the first in log order, as the live path's conflict clause keeps it.
    async fn drop_repeats(&self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query(
            "delete from usage_records r using usage_records f
              where f.team_id = r.team_id and f.request_id = r.request_id
                and f.position < r.position",
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn finish_rebuild(&self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query(&format!(
            "insert into usage_daily ({DAILY_COLUMNS}) {DAILY_SUMS} from usage_records group by 1, 2, 3"
        ))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// `usage_records`' columns in the order both writers send them (`insert`'s arrays,
/// `copy_row`'s fields).
const RECORD_COLUMNS: &str = "request_id, team_id, organization_id, key_fingerprint, model,
    provider_model, prompt_tokens, completion_tokens, cached_tokens, provider_cost, price,
    status, latency_ms, occurred_at, job_id, source, position";
const DAILY_COLUMNS: &str = "team_id, day, model, organization_id, requests, failed_requests,
    prompt_tokens, completion_tokens, cached_tokens, provider_cost, price";
const DAILY_SUMS: &str = "select team_id, (occurred_at at time zone 'UTC')::date, model,
    min(organization_id), count(*), count(*) filter (where status = 'failure'), sum(prompt_tokens),
    sum(completion_tokens), sum(cached_tokens), sum(provider_cost), sum(price)";

/// The usage records among a batch's events (the rest pass through with null payloads).
fn usage_events(events: &[StoredEvent]) -> impl Iterator<Item = &StoredEvent> {
    events
        .iter()
        .filter(|e| e.aggregate_type == USAGE_AGGREGATE)
}

fn record_of(event: &StoredEvent) -> Result<UsageRecord, ProjectionError> {
    let UsageEvent::UsageRecorded(record) = event
        .decode()
        .map_err(|e| ProjectionError::decode(event, e))?;
    Ok(record)
}

fn records_of(events: &[StoredEvent]) -> Result<Vec<(UsageRecord, i64)>, ProjectionError> {
    usage_events(events)
        .map(|event| Ok((record_of(event)?, event.global_position)))
        .collect()
}

/// Column vectors for one `unnest` insert.
#[derive(Default)]
struct Columns {
    request_id: Vec<String>,
    team_id: Vec<String>,
    organization_id: Vec<String>,
    key_fingerprint: Vec<Option<String>>,
    model: Vec<String>,
    provider_model: Vec<Option<String>>,
    prompt_tokens: Vec<i64>,
    completion_tokens: Vec<i64>,
    cached_tokens: Vec<i64>,
    provider_cost: Vec<Decimal>,
    price: Vec<Decimal>,
    status: Vec<&'static str>,
    latency_ms: Vec<Option<i64>>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    job_id: Vec<Option<String>>,
    source: Vec<&'static str>,
    position: Vec<i64>,
}

/// A count (tokens, milliseconds) as a `bigint`, saturating.
fn bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Inserts the records (a team's request id already there is skipped) and adds the inserted ones
/// to the roll-ups.
async fn insert(tx: &mut PgConnection, records: &[(UsageRecord, i64)]) -> Result<(), sqlx::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let mut c = Columns::default();
    for (r, position) in records {
        c.request_id.push(r.request_id.as_str().to_owned());
        c.team_id.push(r.team_id.as_str().to_owned());
        c.organization_id
            .push(r.organization_id.as_str().to_owned());
        c.key_fingerprint
            .push(r.key_fingerprint.as_ref().map(|f| f.as_str().to_owned()));
        c.model.push(r.model.clone());
        c.provider_model.push(r.provider_model.clone());
        c.prompt_tokens.push(bigint(r.prompt_tokens));
        c.completion_tokens.push(bigint(r.completion_tokens));
        c.cached_tokens.push(bigint(r.cached_tokens));
        c.provider_cost.push(r.provider_cost.as_decimal());
        c.price.push(r.price.as_decimal());
        c.status.push(r.status.as_str());
        c.latency_ms.push(r.latency_ms.map(bigint));
        c.occurred_at.push(r.occurred_at);
        c.job_id.push(r.job_id.clone());
        c.source.push(r.source.as_str());
        c.position.push(*position);
    }
    // Roll-ups are summed from the rows actually inserted, so the two tables cannot disagree.
    let sql = format!(
        "with ins as (
             insert into usage_records ({RECORD_COLUMNS})
             select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::bigint[], $8::bigint[], $9::bigint[], $10::numeric[], $11::numeric[], $12::text[],
                 $13::bigint[], $14::timestamptz[], $15::text[], $16::text[], $17::bigint[])
             on conflict (team_id, request_id) do nothing returning *)
         insert into usage_daily ({DAILY_COLUMNS}) {DAILY_SUMS} from ins group by 1, 2, 3
         on conflict (team_id, day, model) do update set
             requests = usage_daily.requests + excluded.requests,
             failed_requests = usage_daily.failed_requests + excluded.failed_requests,
             prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
             completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
             cached_tokens = usage_daily.cached_tokens + excluded.cached_tokens,
             provider_cost = usage_daily.provider_cost + excluded.provider_cost,
             price = usage_daily.price + excluded.price"
    );
    sqlx::query(&sql)
        .bind(&c.request_id)
        .bind(&c.team_id)
        .bind(&c.organization_id)
        .bind(&c.key_fingerprint)
        .bind(&c.model)
        .bind(&c.provider_model)
        .bind(&c.prompt_tokens)
        .bind(&c.completion_tokens)
        .bind(&c.cached_tokens)
        .bind(&c.provider_cost)
        .bind(&c.price)
        .bind(&c.status)
        .bind(&c.latency_ms)
        .bind(&c.occurred_at)
        .bind(&c.job_id)
        .bind(&c.source)
        .bind(&c.position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Usage records a bulk load decodes and sends at a time: PostgreSQL parses one chunk while
/// the next is decoded, instead of the two taking turns over a whole batch.
const COPY_CHUNK: usize = 250;

/// A rebuild's bulk load: the records through `COPY` in text format, checking nothing (the
/// copy has no primary key yet). PostgreSQL parses COPY's rows for about half the CPU of the
/// same rows as `unnest` arrays (2.4 s against 4.2 s a million, measured in SQL).
async fn copy_in(tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ProjectionError> {
    let usage: Vec<&StoredEvent> = usage_events(events).collect();
    if usage.is_empty() {
        return Ok(());
    }
    let mut copy = tx
        .copy_in_raw(&format!("copy usage_records ({RECORD_COLUMNS}) from stdin"))
        .await?;
    for chunk in usage.chunks(COPY_CHUNK) {
        let mut text = String::with_capacity(chunk.len() * 200);
        for event in chunk {
            match record_of(event) {
                Ok(record) => copy_row(&mut text, &record, event.global_position),
                Err(error) => {
                    copy.abort("an event could not be decoded").await.ok();
                    return Err(error);
                }
            }
        }
        copy.send(text.into_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// One record as a line of COPY's text format, in `RECORD_COLUMNS` order.
fn copy_row(out: &mut String, r: &UsageRecord, position: i64) {
    use std::fmt::Write;
    let text = |out: &mut String, value: Option<&str>| {
        match value {
            None => out.push_str("\\N"),
            Some(value) => {
                for c in value.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
        out.push('\t');
    };
    text(out, Some(r.request_id.as_str()));
    text(out, Some(r.team_id.as_str()));
    text(out, Some(r.organization_id.as_str()));
    text(out, r.key_fingerprint.as_ref().map(|f| f.as_str()));
    text(out, Some(&r.model));
    text(out, r.provider_model.as_deref());
    // Numbers and times print nothing COPY would need escaped; `write!` to a String cannot fail.
    let _ = write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t",
        bigint(r.prompt_tokens),
        bigint(r.completion_tokens),
        bigint(r.cached_tokens),
        r.provider_cost.as_decimal(),
        r.price.as_decimal()
    );
    text(out, Some(r.status.as_str()));
    match r.latency_ms {
        Some(l) => {
            let _ = write!(out, "{}\t", bigint(l));
        }
        None => out.push_str("\\N\t"),
    }
    // Cut to microseconds here: PostgreSQL rounds finer text, and the live path's binary
    // encoding truncates, so the two would differ by a microsecond half the time.
    let _ = write!(
        out,
        "{}\t",
        r.occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    text(out, r.job_id.as_deref());
    text(out, Some(r.source.as_str()));
    let _ = writeln!(out, "{position}");
}
