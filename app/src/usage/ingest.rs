//! Pulling spend from LiteLLM's `/spend/logs/v2`. Each pass reads the window from the durable
//! watermark minus an overlap up to now, page by page, records what it finds (duplicates are
//! no-ops in the event store), and only then moves the watermark. A crash mid-pass re-reads
//! the window on restart: nothing is lost and nothing counts twice. One instance polls at a
//! time (a lease on the cursor row); another takes over when the lease lapses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::CommandMetadata;
use litellm::{LitellmClient, LitellmError, SpendLogPage, SpendLogRow};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::call_ids::CallIds;
use super::ledger::{Incoming, Ledger};
use super::litellm_rows;

pub const SOURCE: &str = "litellm_spend_logs";
const ACTOR: &str = "system:spend-ingest";

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub poll_every: Duration,
    pub overlap: Duration,
    pub lookback: Duration,
    /// A sweep every `long_sweep_every` re-reads this far back, for requests that ran longer
    /// than `overlap` (LiteLLM files a row under the request's start, writing it at its end).
    pub long_overlap: Duration,
    pub long_sweep_every: Duration,
    pub page_size: u64,
    pub lease: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_secs(10),
            overlap: Duration::from_secs(120),
            lookback: Duration::from_secs(7 * 24 * 3600),
            long_overlap: Duration::from_secs(6060),
            long_sweep_every: Duration::from_secs(300),
            page_size: 1000,
            lease: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("LiteLLM: {0}")]
    Litellm(#[from] LitellmError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("recording usage: {0}")]
    Append(#[from] anyhow::Error),
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub rows_seen: u64,
    pub recorded: u64,
    pub duplicates: u64,
    pub not_ours: u64,
    pub invalid: u64,
    pub pages: u64,
}

pub struct SpendLogIngestor {
    pool: PgPool,
    ledger: Ledger,
    client: LitellmClient,
    call_ids: CallIds,
    settings: IngestSettings,
    owner: String,
}

/// LiteLLM's query format for `start_date`/`end_date`.
fn litellm_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl SpendLogIngestor {
    pub fn new(
        pool: PgPool,
        client: LitellmClient,
        call_ids: CallIds,
        settings: IngestSettings,
    ) -> Self {
        Self {
            ledger: Ledger::new(pool.clone()),
            pool,
            client,
            call_ids,
            settings,
            owner: format!("ingest-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            let overlap = if last_sweep.elapsed() >= self.settings.long_sweep_every {
                last_sweep = tokio::time::Instant::now();
                self.settings.long_overlap.max(self.settings.overlap)
            } else {
                self.settings.overlap
            };
            match self.pass_over(overlap).await {
                Ok(Some(stats)) if stats.recorded > 0 || stats.invalid > 0 => {
                    tracing::info!(
                        rows = stats.rows_seen,
                        recorded = stats.recorded,
                        duplicates = stats.duplicates,
                        not_ours = stats.not_ours,
                        invalid = stats.invalid,
                        "spend logs ingested"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "spend log ingestion failed; the window is re-read next pass");
                    self.record_failure(&error).await;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.poll_every) => {}
            }
        }
        self.release().await;
        tracing::info!("spend log ingestion stopped");
    }

    /// Hands the lease back on shutdown, so another instance (or the next start) polls at once.
    async fn release(&self) {
        if let Err(error) = sqlx::query(
            "update spend_ingest_cursors set lease_owner = null, lease_until = null
              where source = $1 and lease_owner = $2",
        )
        .bind(SOURCE)
        .bind(&self.owner)
        .execute(&self.pool)
        .await
        {
            tracing::warn!(%error, "could not release the spend ingestion lease");
        }
    }

    /// One pass over the window; `None` when another instance holds the lease.
    pub async fn pass(&self) -> Result<Option<PassStats>, IngestError> {
        self.pass_over(self.settings.overlap).await
    }

    /// One pass reading from the watermark minus `overlap`.
    pub async fn pass_over(&self, overlap: Duration) -> Result<Option<PassStats>, IngestError> {
        let Some(watermark) = self.lease().await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let overlap = chrono::Duration::from_std(overlap).unwrap_or_default();
        let start = litellm_time(watermark - overlap);
        // One second past now: LiteLLM compares whole seconds.
        let end_at = now + chrono::Duration::seconds(1);
        let end = litellm_time(end_at);
        let mut stats = PassStats::default();
        let fetch = |page: u64| {
            let client = self.client.clone();
            let (start, end, size) = (start.clone(), end.clone(), self.settings.page_size);
            tokio::spawn(async move { client.spend_logs_page(&start, &end, page, size).await })
        };
        // The next page downloads while the current one is written.
        let mut pending = Some(fetch(1));
        let mut page_number = 1;
        while let Some(download) = pending.take() {
            let page: SpendLogPage = download
                .await
                .map_err(|e| IngestError::Append(anyhow::anyhow!("fetch task failed: {e}")))??;
            // A full page may be followed by more; a short one is the last.
            if page.data.len() as u64 >= self.settings.page_size {
                page_number += 1;
                pending = Some(fetch(page_number));
            }
            stats.pages += 1;
            self.ingest_rows(&page.data, &mut stats).await?;
        }
        self.advance(watermark.max(end_at - chrono::Duration::seconds(1)), &stats)
            .await?;
        Ok(Some(stats))
    }

    async fn ingest_rows(
        &self,
        rows: &[SpendLogRow],
        stats: &mut PassStats,
    ) -> Result<(), IngestError> {
        stats.rows_seen += rows.len() as u64;
        let mut batch: Vec<Incoming> = Vec::with_capacity(rows.len());
        for row in rows {
            match litellm_rows::from_spend_log(row, &self.call_ids) {
                Ok(incoming) => batch.push(incoming),
                Err(error) => {
                    stats.invalid += 1;
                    tracing::warn!(reason = error.0, "unreadable spend log row skipped");
                }
            }
        }
        let prepared = self.ledger.prepare(batch, Utc::now()).await?;
        stats.not_ours += prepared.not_ours() as u64;
        stats.invalid += prepared.invalid() as u64;
        for (_, request_id, refusal) in &prepared.refused {
            if let super::ledger::Refusal::Invalid(error) = refusal {
                tracing::warn!(request_id, %error, "invalid spend log row skipped");
            }
        }
        stats.duplicates += prepared.repeated as u64;
        let metadata = CommandMetadata::new(ACTOR, Utc::now());
        let appended = self.ledger.append(&prepared.records, &metadata).await?;
        stats.recorded += appended.recorded as u64;
        stats.duplicates += appended.duplicates as u64;
        Ok(())
    }

    /// Takes or renews the lease; the watermark to read from, or `None` if someone else polls.
    async fn lease(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let initial =
            Utc::now() - chrono::Duration::from_std(self.settings.lookback).unwrap_or_default();
        sqlx::query("insert into spend_ingest_cursors (source, watermark) values ($1, $2) on conflict do nothing")
            .bind(SOURCE)
            .bind(initial)
            .execute(&self.pool)
            .await?;
        sqlx::query_scalar(
            "update spend_ingest_cursors
                set lease_owner = $2, lease_until = now() + $3 * interval '1 second', last_run_at = now()
              where source = $1 and (lease_owner is null or lease_owner = $2 or lease_until < now())
          returning watermark",
        )
        .bind(SOURCE)
        .bind(&self.owner)
        .bind(self.settings.lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
    }

    async fn advance(
        &self,
        watermark: DateTime<Utc>,
        stats: &PassStats,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "update spend_ingest_cursors
                set watermark = greatest(watermark, $3), last_success_at = now(), last_error = null,
                    rows_seen = rows_seen + $4, recorded = recorded + $5, not_ours = not_ours + $6,
                    invalid = invalid + $7
              where source = $1 and lease_owner = $2",
        )
        .bind(SOURCE)
        .bind(&self.owner)
        .bind(watermark)
        .bind(stats.rows_seen as i64)
        .bind(stats.recorded as i64)
        .bind(stats.not_ours as i64)
        .bind(stats.invalid as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_failure(&self, error: &IngestError) {
        let message: String = error.to_string().chars().take(500).collect();
        if let Err(db) = sqlx::query(
            "update spend_ingest_cursors set last_error = $3 where source = $1 and lease_owner = $2",
        )
        .bind(SOURCE)
        .bind(&self.owner)
        .bind(message)
        .execute(&self.pool)
        .await
        {
            tracing::debug!(error = %db, "could not record the ingestion failure");
        }
    }
}

pub const PUSH_SOURCE: &str = "litellm_push";

/// Counts a push from LiteLLM's `generic_api` callback, so operators can see it arrives.
pub async fn record_push(pool: &PgPool, stats: &PassStats) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into spend_ingest_cursors (source, watermark, last_run_at, last_success_at, rows_seen,
             recorded, not_ours, invalid)
         values ($1, now(), now(), now(), $2, $3, $4, $5)
         on conflict (source) do update set
             watermark = now(), last_run_at = now(), last_success_at = now(),
             rows_seen = spend_ingest_cursors.rows_seen + excluded.rows_seen,
             recorded = spend_ingest_cursors.recorded + excluded.recorded,
             not_ours = spend_ingest_cursors.not_ours + excluded.not_ours,
             invalid = spend_ingest_cursors.invalid + excluded.invalid",
    )
    .bind(PUSH_SOURCE)
    .bind(stats.rows_seen as i64)
    .bind(stats.recorded as i64)
    .bind(stats.not_ours as i64)
    .bind(stats.invalid as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// The cursor as the API shows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct CursorStatus {
    pub source: String,
    pub watermark: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub rows_seen: i64,
    pub recorded: i64,
    pub not_ours: i64,
    pub invalid: i64,
}

pub async fn status(pool: &PgPool) -> Result<Vec<CursorStatus>, sqlx::Error> {
    sqlx::query_as(
        "select source, watermark, last_run_at, last_success_at, last_error, rows_seen, recorded,
                not_ours, invalid
           from spend_ingest_cursors order by source",
    )
    .fetch_all(pool)
    .await
}
