//! Turning reported requests into usage events: attribute each to a team (by the key's hash,
//! else by team id), price it at the team's markup, and append it as its own stream keyed by
//! the request id. A request id already recorded is skipped by the event store itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use domain::CommandMetadata;
use domain::Percent;
use domain::organization::OrganizationId;
use domain::team::{KeyFingerprint, TeamId};
use domain::usage::{
    USAGE_AGGREGATE, UsageError, UsageEvent, UsageInput, UsageRecord, UsageSource,
};
use rust_decimal::Decimal;
use sqlx::PgPool;
use store::append::{self, StreamStart};

/// A request as reported, with whatever identifies its team.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub input: UsageInput,
    /// SHA-256 of the virtual key that made the request (LiteLLM's `api_key` / token hash).
    pub key_hash: Option<Vec<u8>>,
    pub team_id: Option<String>,
    /// LiteLLM's call id of a call made straight to it: with the request id, the record's
    /// identity for calls started after the cutover (see `call_ids::direct_record_id`).
    pub call_id: Option<String>,
}

/// Why a reported request is not recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Neither its key nor its team is one of ours (LiteLLM serves others too).
    NotOurs,
    Invalid(UsageError),
}

/// A batch after attribution and validation, before anything is written.
#[derive(Debug, Default)]
pub struct Prepared {
    pub records: Vec<UsageRecord>,
    /// Index in the batch, request id as given, and why.
    pub refused: Vec<(usize, String, Refusal)>,
    /// Repeats of a request id earlier in the same batch.
    pub repeated: usize,
}

impl Prepared {
    pub fn invalid(&self) -> usize {
        self.refused
            .iter()
            .filter(|(_, _, r)| matches!(r, Refusal::Invalid(_)))
            .count()
    }

    pub fn not_ours(&self) -> usize {
        self.refused.len() - self.invalid()
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    pub recorded: usize,
    /// Already recorded before (by any path).
    pub duplicates: usize,
    pub last_position: Option<i64>,
}

#[derive(Debug, Clone)]
struct TeamFacts {
    team_id: String,
    organization_id: String,
    markup_percent: Decimal,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct KeyedTeam {
    key_hash: Vec<u8>,
    fingerprint: String,
    team_id: String,
    organization_id: String,
    markup_percent: Decimal,
    created_at: DateTime<Utc>,
}

/// Clocks differ between LiteLLM and us; a request this much older than its team still counts.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
    /// Whether usage streams from before team scoping exist (see `legacy_streams`).
    legacy: Arc<OnceLock<bool>>,
    /// From when direct calls are known by request id and call id (see `combined_from`).
    cutover: Arc<OnceLock<DateTime<Utc>>>,
}

impl Ledger {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            legacy: Arc::default(),
            cutover: Arc::default(),
        }
    }

    /// Attributes and validates a batch; writes nothing.
    pub async fn prepare(
        &self,
        batch: Vec<Incoming>,
        now: DateTime<Utc>,
    ) -> Result<Prepared, sqlx::Error> {
        let hashes: Vec<Vec<u8>> = batch.iter().filter_map(|i| i.key_hash.clone()).collect();
        let by_key = self.teams_by_key(&hashes).await?;
        let team_ids: Vec<String> = batch.iter().filter_map(|i| i.team_id.clone()).collect();
        let by_team = self.teams_by_id(&team_ids).await?;
        let cutover = match batch.iter().any(|i| i.call_id.is_some()) {
            true => Some(self.combined_from().await?),
            false => None,
        };
        let mut prepared = Prepared::default();
        let mut seen = HashSet::new();
        for (index, mut incoming) in batch.into_iter().enumerate() {
            if let (Some(call_id), Some(cutover)) = (&incoming.call_id, cutover)
                && incoming.input.occurred_at >= cutover
            {
                incoming.input.request_id =
                    super::call_ids::direct_record_id(&incoming.input.request_id, call_id);
            }
            let from_key = incoming
                .key_hash
                .as_ref()
                .and_then(|h| by_key.get(h.as_slice()));
            let (team, fingerprint) = match (from_key, &incoming.team_id) {
                (Some((team, fp)), _) => (team, Some(fp.clone())),
                // By team id alone. From LiteLLM that is a key we did not mint (made by hand):
                // only requests after the team existed here can be its spend; older rows under the
                // same id belong to an earlier team LiteLLM still remembers. An admin may backdate.
                (None, Some(id)) => match by_team.get(id) {
                    Some(team)
                        if incoming.input.source == UsageSource::Api
                            || incoming.input.occurred_at >= team.created_at - CLOCK_SKEW =>
                    {
                        (team, None)
                    }
                    _ => {
                        prepared
                            .refused
                            .push((index, incoming.input.request_id, Refusal::NotOurs));
                        continue;
                    }
                },
                (None, None) => {
                    prepared
                        .refused
                        .push((index, incoming.input.request_id, Refusal::NotOurs));
                    continue;
                }
            };
            let request_id = incoming.input.request_id.clone();
            match to_record(incoming.input, team, fingerprint, now) {
                Ok(record) => {
                    if seen.insert(record.stream_id()) {
                        prepared.records.push(record);
                    } else {
                        prepared.repeated += 1;
                    }
                }
                Err(error) => prepared
                    .refused
                    .push((index, request_id, Refusal::Invalid(error))),
            }
        }
        Ok(prepared)
    }

    /// Appends the records; those whose request id is already recorded change nothing.
    pub async fn append(
        &self,
        records: &[UsageRecord],
        metadata: &CommandMetadata,
    ) -> Result<Appended, anyhow::Error> {
        let meta = serde_json::to_string(&metadata.to_map())?;
        let (appended, _) = self
            .append_each(records.iter().map(|record| (record, meta.clone())))
            .await?;
        Ok(appended)
    }

    /// Appends records each with its own metadata (as JSON text); also returns the stream ids
    /// (`UsageRecord::stream_id`) that were new.
    pub async fn append_each<'a>(
        &self,
        records: impl Iterator<Item = (&'a UsageRecord, String)>,
    ) -> Result<(Appended, HashSet<String>), anyhow::Error> {
        // Each record's stream id, computed once.
        let records: Vec<(&UsageRecord, String, String)> = records
            .map(|(record, meta)| (record, record.stream_id(), meta))
            .collect();
        let legacy = self.recorded_before_team_scoping(&records).await?;
        let mut sources: Vec<(&str, UsageSource)> = Vec::new();
        let events = records
            .iter()
            .filter(|(_, stream, _)| !legacy.contains(stream))
            .map(|(record, stream, meta)| {
                sources.push((stream.as_str(), record.source));
                StreamStart::with_metadata_text(
                    USAGE_AGGREGATE,
                    stream.clone(),
                    &UsageEvent::UsageRecorded((*record).clone()),
                    meta.clone(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.pool.acquire().await?;
        let appended = append::open_streams(&mut conn, &events).await?;
        let opened: HashSet<String> = appended.opened.into_iter().collect();
        for source in [
            UsageSource::Gateway,
            UsageSource::GatewayEstimate,
            UsageSource::SpendLogs,
            UsageSource::Push,
            UsageSource::Api,
        ] {
            let recorded = sources
                .iter()
                .filter(|(id, s)| *s == source && opened.contains(*id))
                .count();
            if recorded > 0 {
                crate::metrics::usage_recorded(source.as_str(), recorded);
            }
        }
        Ok((
            Appended {
                recorded: opened.len(),
                duplicates: records.len() - opened.len(),
                last_position: appended.last_position,
            },
            opened,
        ))
    }

    /// Records already in the log under their request id alone (written before usage streams
    /// were scoped by team, migration 20261202000002) by the same team: duplicates, not new
    /// calls, so spend ingestion re-reading across an upgrade does not bill twice.
    async fn recorded_before_team_scoping(
        &self,
        records: &[(&UsageRecord, String, String)],
    ) -> Result<HashSet<String>, sqlx::Error> {
        if !self.legacy_streams().await? {
            return Ok(HashSet::new());
        }
        let ids: Vec<&str> = records
            .iter()
            .map(|(r, _, _)| r.request_id.as_str())
            .collect();
        let found: Vec<(String, Option<String>)> = sqlx::query_as(
            "select aggregate_id, payload -> 'UsageRecorded' ->> 'team_id' from events
              where aggregate_type = $1 and sequence = 1 and aggregate_id = any($2)",
        )
        // Planned for these keys, never from a cached plan (ARCHITECTURE.md, "Query plans").
        .persistent(false)
        .bind(USAGE_AGGREGATE)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        // An old stream is this batch's record only if its team is the record's team.
        let streams: HashSet<&str> = records.iter().map(|(_, s, _)| s.as_str()).collect();
        Ok(found
            .into_iter()
            .filter_map(|(request_id, team)| {
                team.map(|team| domain::usage::stream_id(&team, &request_id))
            })
            .filter(|id| streams.contains(id.as_str()))
            .collect())
    }

    /// Whether the log holds usage streams named by request id alone (read once: none are
    /// written any more, so the answer only ever changes from yes to no by a new database).
    async fn legacy_streams(&self) -> Result<bool, sqlx::Error> {
        self.read_once(
            &self.legacy,
            "select exists(select 1 from usage_identity_legacy)",
        )
        .await
    }

    /// When direct calls began to be known by request id and call id (migration
    /// 20261202000003); calls that started earlier keep the request id alone they were
    /// recorded under. Read once: it never changes.
    async fn combined_from(&self) -> Result<DateTime<Utc>, sqlx::Error> {
        self.read_once(
            &self.cutover,
            "select combined_from from usage_identity_cutover",
        )
        .await
    }

    /// A one-value answer that never changes for this database, read on first use and kept.
    async fn read_once<T>(&self, cell: &OnceLock<T>, sql: &'static str) -> Result<T, sqlx::Error>
    where
        T: Copy
            + Send
            + Unpin
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        if let Some(known) = cell.get() {
            return Ok(*known);
        }
        let value: T = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
        let _ = cell.set(value);
        Ok(value)
    }

    async fn teams_by_key(
        &self,
        hashes: &[Vec<u8>],
    ) -> Result<HashMap<Vec<u8>, (TeamFacts, KeyFingerprint)>, sqlx::Error> {
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<KeyedTeam> = sqlx::query_as(
            "select k.key_hash, k.fingerprint, t.team_id, t.organization_id, t.markup_percent, t.created_at
               from virtual_keys k join teams t on t.team_id = k.team_id
              where k.key_hash = any($1)",
        )
        // Planned for these keys, never from a cached plan (ARCHITECTURE.md, "Query plans").
        .persistent(false)
        .bind(hashes)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let facts = TeamFacts {
                    team_id: row.team_id,
                    organization_id: row.organization_id,
                    markup_percent: row.markup_percent,
                    created_at: row.created_at,
                };
                (row.key_hash, (facts, KeyFingerprint::new(row.fingerprint)))
            })
            .collect())
    }

    async fn teams_by_id(&self, ids: &[String]) -> Result<HashMap<String, TeamFacts>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String, Decimal, DateTime<Utc>)> = sqlx::query_as(
            "select team_id, organization_id, markup_percent, created_at from teams where team_id = any($1)",
        )
        // Planned for these keys, never from a cached plan (ARCHITECTURE.md, "Query plans").
        .persistent(false)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(team_id, organization_id, markup_percent, created_at)| {
                let facts = TeamFacts {
                    team_id: team_id.clone(),
                    organization_id,
                    markup_percent,
                    created_at,
                };
                (team_id, facts)
            })
            .collect())
    }
}

fn to_record(
    input: UsageInput,
    team: &TeamFacts,
    fingerprint: Option<KeyFingerprint>,
    now: DateTime<Utc>,
) -> Result<UsageRecord, UsageError> {
    // Read-model values were validated when their events were written.
    let team_id = TeamId::parse(&team.team_id).map_err(|_| UsageError::BadRequestId)?;
    let organization_id =
        OrganizationId::parse(&team.organization_id).map_err(|_| UsageError::BadRequestId)?;
    let markup = Percent::parse_markup("markup_percent", &team.markup_percent.to_string())
        .map_err(|_| UsageError::BadCost {
            field: "markup_percent",
        })?;
    UsageRecord::new(input, team_id, organization_id, fingerprint, markup, now)
}
