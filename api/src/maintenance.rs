//! Operator commands on the read models: `replay` (rebuild and swap in) and `verify` (rebuild
//! aside and compare). Progress goes to a bar on a terminal, to log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::try_join_all;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use projections::rebuild::{self, Progress, Rebuild, TableDiff};
use sqlx::PgPool;

/// Shows how a rebuild advances: a bar with events per second on a terminal, a line every
/// few seconds otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Reporter {
    fn new(projector: &str, head: i64, bars: &Option<MultiProgress>) -> Self {
        let bar = bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new(head.max(0) as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:40}] {pos}/{len} positions, {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(projector.to_owned());
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn rate(&self, events: u64) -> f64 {
        events as f64 / self.started.elapsed().as_secs_f64().max(1e-6)
    }

    fn update(&mut self, progress: Progress) {
        let rate = self.rate(progress.events);
        match &self.bar {
            Some(bar) => {
                bar.set_position(progress.position.max(0) as u64);
                bar.set_message(format!("{} events, {rate:.0} events/s", progress.events));
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                tracing::info!(
                    projector = progress.projector,
                    events = progress.events,
                    position = progress.position,
                    events_per_second = rate as u64,
                    "rebuilding"
                );
            }
            None => {}
        }
    }

    fn finish(&self, progress: Progress, what: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        tracing::info!(
            projector = progress.projector,
            events = progress.events,
            position = progress.position,
            seconds = format!("{:.2}", self.started.elapsed().as_secs_f64()),
            events_per_second = self.rate(progress.events) as u64,
            "{what}"
        );
    }
}

async fn head(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("select coalesce(max(global_position), 0) from events")
            .fetch_one(pool)
            .await?,
    )
}

/// Bars for a terminal; `None` when stderr is a file or pipe (log lines instead).
fn bars() -> Option<MultiProgress> {
    std::io::stderr().is_terminal().then(MultiProgress::new)
}

/// Creates one rebuild per selected read model.
async fn start_all(pool: &PgPool, projection: Option<&str>) -> anyhow::Result<Vec<Rebuild>> {
    try_join_all(
        rebuild::select(projection)?
            .into_iter()
            .map(|projector| Rebuild::start(pool, projector)),
    )
    .await
    .context("preparing scratch tables")
}

/// One pass over the log feeds every rebuild; progress is the pass's.
async fn bulk(
    pool: &PgPool,
    rebuilds: &mut [Rebuild],
    bound: Option<store::event_log::LogPosition>,
) -> anyhow::Result<()> {
    let label = match rebuilds {
        [one] => one.progress().projector,
        _ => "read models",
    };
    let bars = bars();
    let mut reporter = Reporter::new(label, head(pool).await?, &bars);
    let mut last = None;
    let outcome = rebuild::run_together(rebuilds, bound, &mut |all| {
        if let Some(first) = all.first() {
            let progress = Progress {
                projector: label,
                ..*first
            };
            last = Some(progress);
            reporter.update(progress);
        }
    })
    .await;
    if let Some(progress) = last {
        reporter.finish(progress, "log replayed into scratch tables");
    }
    Ok(outcome?)
}

async fn abandon(rebuilds: Vec<Rebuild>) {
    for rebuild in rebuilds {
        rebuild.abandon().await.ok();
    }
}

/// Rebuilds the named read model (or all, from one pass over the log) from position zero and
/// swaps each in.
pub async fn replay(pool: &PgPool, projection: Option<&str>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut rebuilds = start_all(pool, projection).await?;
    if let Err(error) = bulk(pool, &mut rebuilds, None).await {
        abandon(rebuilds).await;
        return Err(error.context("rebuilding"));
    }
    // Each swap locks only its own tables and checkpoint, so they can run together (their
    // index builds then share the cores).
    try_join_all(rebuilds.into_iter().map(|rebuild| async move {
        let progress = rebuild.swap().await.context("swapping in")?;
        tracing::info!(
            projector = progress.projector,
            events = progress.events,
            position = progress.position,
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "read model rebuilt and swapped in"
        );
        anyhow::Ok(())
    }))
    .await?;
    Ok(())
}

/// Rebuilds aside (from one pass over the log) and compares; returns the differences found
/// (none: the models are sound).
pub async fn verify(
    pool: &PgPool,
    projection: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, TableDiff)>> {
    let mut rebuilds = start_all(pool, projection).await?;
    // Up to the oldest live position; each then catches up to its own under its lock.
    let mut bound = None;
    for rebuild in &rebuilds {
        let live = rebuild.live_position().await?;
        bound = Some(bound.map_or(live, |b: store::event_log::LogPosition| b.min(live)));
    }
    if let Err(error) = bulk(pool, &mut rebuilds, bound).await {
        abandon(rebuilds).await;
        return Err(error.context("rebuilding"));
    }
    let compared = try_join_all(rebuilds.into_iter().map(|rebuild| async move {
        let name = rebuild.progress().projector;
        rebuild
            .compare_with_live()
            .await
            .with_context(|| format!("comparing {name}"))
            .map(|diffs| (name, diffs))
    }))
    .await?;
    let mut found = Vec::new();
    for (name, diffs) in compared {
        for diff in diffs {
            tracing::error!(
                projector = name,
                table = diff.table,
                rows_only_live = diff.only_live,
                rows_only_rebuilt = diff.only_rebuilt,
                "the live read model differs from a replay of the log"
            );
            found.push((name, diff));
        }
    }
    Ok(found)
}

/// Checks the event log's hash chains and seals; true if nothing was tampered with.
pub async fn verify_chain(pool: &PgPool, seal_key: [u8; 32]) -> anyhow::Result<bool> {
    // Seals made before an `ENCRYPTION_KEY` rotation verify with the old key.
    let mut keys = vec![seal_key];
    if let Some(old) = crate::config::old_encryption_key()? {
        keys.push(crate::config::seal_key_of(&old));
    }
    let report = projections::seals::verify_chain(pool, &keys).await?;
    if report.is_intact() {
        tracing::info!(
            events = report.events,
            seals = report.seals,
            unsealed = report.unsealed,
            "event log intact: every hash matches its event and stream, every seal its events"
        );
    } else {
        tracing::error!(
            events = report.events,
            broken_links = ?report.broken_links,
            broken_seals = ?report.broken_seals,
            "the event log was altered: events edited, deleted or reordered outside the application"
        );
    }
    Ok(report.is_intact())
}

/// What `rotate_encryption_key` re-encrypted, per table.
#[derive(Debug, Default)]
pub struct KeyRotation {
    pub virtual_keys: app::keys::Rotated,
    pub webhook_secrets: app::keys::Rotated,
    pub idempotent_answers: app::keys::Rotated,
}

/// Moves every stored secret from the `old` to the `new` `ENCRYPTION_KEY` in one transaction
/// (all or nothing). Run it with the service stopped, then start the service with the new
/// key; seals made under the old key keep verifying with `ENCRYPTION_KEY_OLD` set.
pub async fn rotate_encryption_key(
    pool: &PgPool,
    old: [u8; 32],
    new: [u8; 32],
) -> anyhow::Result<KeyRotation> {
    anyhow::ensure!(old != new, "the old and new ENCRYPTION_KEY are the same");
    let (old, new) = (app::keys::Vault::new(old), app::keys::Vault::new(new));
    let rotation = app::keys::Rotation {
        old: &old,
        new: &new,
    };
    let mut tx = pool.begin().await?;
    let done = KeyRotation {
        virtual_keys: app::keys::rotate_all(&mut tx, &rotation)
            .await
            .context("virtual keys")?,
        webhook_secrets: app::webhooks::rotate_all(&mut tx, &rotation)
            .await
            .context("webhook secrets")?,
        idempotent_answers: crate::idempotency::rotate_all(&mut tx, &rotation)
            .await
            .context("stored idempotent answers")?,
    };
    tx.commit().await?;
    tracing::info!(
        ?done,
        "stored secrets re-encrypted under the new ENCRYPTION_KEY"
    );
    Ok(done)
}
