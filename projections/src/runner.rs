//! Runs one consumer, or a group of consumers in one transaction: claim the checkpoints, read a
//! batch in global order once, apply it to each, move the checkpoints, commit; then wait for a
//! notification or the poll interval.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::progress::ProgressSignal;
use crate::projector::{ProjectionError, Projector};
use store::checkpoint;
use store::event_log;
use store::notifier::EventNotifier;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub batch_size: i64,
    /// Fallback when no notification arrives (lost, or another process wrote).
    pub poll_interval: Duration,
    /// Longest pause after a failed batch; failures back off exponentially up to it.
    pub max_backoff: Duration,
    /// After a wake-up, wait this long before reading: under a stream of small writes (one
    /// usage event per LLM call) the consumer then applies tens of events per transaction
    /// instead of one, at the price of a few milliseconds of lag.
    pub gather: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            gather: Duration::from_millis(5),
        }
    }
}

/// What one step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied this many events (the batch may not have been the last).
    Applied(usize),
    /// Nothing readable; `behind_horizon` says events wait on an older open transaction.
    Idle { behind_horizon: bool },
    /// Another process holds this consumer's checkpoint right now.
    Busy,
}

pub struct ConsumerRunner {
    pool: PgPool,
    /// One consumer, or several stepping together (each still with its own checkpoint).
    projectors: Vec<Arc<dyn Projector>>,
    /// The union of the projectors' interests (`None`: every event).
    interests: Option<Vec<&'static str>>,
    config: RunnerConfig,
    progress: ProgressSignal,
}

impl ConsumerRunner {
    pub fn new(
        pool: PgPool,
        projector: Arc<dyn Projector>,
        config: RunnerConfig,
        progress: ProgressSignal,
    ) -> Self {
        Self::group(pool, vec![projector], config, progress)
    }

    /// Consumers that step in one transaction: the batch is read once and applied to each,
    /// and every checkpoint moves in the same commit, so a burst costs one transaction instead
    /// of one per consumer. A consumer whose checkpoint another process holds is skipped that
    /// time; if the group's batch fails, each consumer steps alone, so one that cannot apply
    /// an event does not hold back the others.
    pub fn group(
        pool: PgPool,
        projectors: Vec<Arc<dyn Projector>>,
        config: RunnerConfig,
        progress: ProgressSignal,
    ) -> Self {
        assert!(
            !projectors.is_empty(),
            "a runner runs at least one consumer"
        );
        let interests = projectors
            .iter()
            .map(|p| p.interests())
            .collect::<Option<Vec<_>>>()
            .map(|all| {
                let mut union: Vec<&'static str> = all.into_iter().flatten().copied().collect();
                union.sort_unstable();
                union.dedup();
                union
            });
        Self {
            pool,
            projectors,
            interests,
            config,
            progress,
        }
    }

    /// The consumers' names, joined (for logs).
    pub fn name(&self) -> String {
        let names: Vec<&str> = self.projectors.iter().map(|p| p.name()).collect();
        names.join("+")
    }

    /// Applies at most one batch, atomically with the checkpoints. For a group whose batch
    /// failed, each consumer then steps alone (the first error is returned if none progressed).
    pub async fn step(&self) -> Result<Step, ProjectionError> {
        match step_together(
            &self.pool,
            &self.projectors,
            self.interests.as_deref(),
            &self.config,
        )
        .await
        {
            Ok(step) => {
                self.applied(step);
                Ok(step)
            }
            Err(error) if self.projectors.len() > 1 => {
                tracing::warn!(consumers = %self.name(), %error, "group batch failed; stepping each consumer alone");
                let mut progressed = None;
                for projector in &self.projectors {
                    let one = std::slice::from_ref(projector);
                    match step_together(&self.pool, one, projector.interests(), &self.config).await
                    {
                        Ok(step) => {
                            self.applied(step);
                            if matches!(step, Step::Applied(_)) {
                                progressed = Some(step);
                            }
                        }
                        Err(error) => {
                            tracing::error!(consumer = projector.name(), %error, "projection batch failed");
                        }
                    }
                }
                progressed.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Creates each consumer's checkpoint row if it is missing: at start (a failure is a
    /// warning) and again after a failed batch (the batch's error was logged already).
    async fn register(&self, at_start: bool) {
        for projector in &self.projectors {
            if let Err(error) = checkpoint::register(&self.pool, projector.name()).await {
                if at_start {
                    tracing::warn!(consumer = projector.name(), %error, "could not register consumer; will retry");
                } else {
                    tracing::debug!(consumer = projector.name(), %error, "register retry failed");
                }
            }
        }
    }

    fn applied(&self, step: Step) {
        if let Step::Applied(n) = step {
            self.progress.bump();
            tracing::debug!(consumers = %self.name(), events = n, "applied batch");
        }
    }

    /// Runs until `shutdown` is cancelled. Errors are logged and retried with backoff: a
    /// consumer stalls rather than skip an event it cannot apply.
    pub async fn run(self, notifier: EventNotifier, shutdown: CancellationToken) {
        let name = self.name();
        self.register(true).await;
        let mut wakeups = notifier.subscribe(self.interests.as_deref());
        let mut failures: u32 = 0;
        let mut horizon_pause = Duration::from_millis(1);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            wakeups.mark_unchanged();
            let pause = match self.step().await {
                Ok(Step::Applied(n)) if n as i64 >= self.config.batch_size => {
                    // A full batch: more is waiting.
                    failures = 0;
                    horizon_pause = Duration::from_millis(1);
                    continue;
                }
                Ok(Step::Applied(_)) => {
                    // A partial batch read everything readable. Events committed since then
                    // have notified us (or wait behind an open transaction, which the short
                    // pause covers): stepping again at once would mostly find nothing, at
                    // the cost of a transaction per batch.
                    failures = 0;
                    horizon_pause = Duration::from_millis(1);
                    Duration::from_millis(5)
                }
                Ok(Step::Idle {
                    behind_horizon: true,
                }) => {
                    failures = 0;
                    horizon_pause = (horizon_pause * 2).min(Duration::from_millis(50));
                    horizon_pause
                }
                Ok(Step::Idle { .. } | Step::Busy) => {
                    failures = 0;
                    horizon_pause = Duration::from_millis(1);
                    self.config.poll_interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff(failures, self.config.max_backoff);
                    tracing::error!(consumer = %name, %error, attempt = failures, retry_in_ms = pause.as_millis() as u64, "projection batch failed");
                    self.register(false).await;
                    pause
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = wakeups.changed(), if failures == 0 => {
                    if changed.is_err() {
                        // The notifier is gone (shutting down); fall back to polling.
                        tokio::time::sleep(pause).await;
                    } else if !self.config.gather.is_zero() {
                        tokio::time::sleep(self.config.gather).await;
                    }
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!(consumer = %name, "consumer stopped");
    }
}

/// One transaction: claim the free checkpoints among `projectors`, read one batch after the
/// earliest, give each consumer the events after its own checkpoint, move them all, commit.
async fn step_together(
    pool: &PgPool,
    projectors: &[Arc<dyn Projector>],
    interests: Option<&[&str]>,
    config: &RunnerConfig,
) -> Result<Step, ProjectionError> {
    let mut tx = pool.begin().await?;
    // Read models are derived from the log and move with their checkpoint in this
    // transaction: a crash that lost the commit loses both, and the batch is applied again.
    // So the commit need not wait for the WAL flush, and row locks (e.g. on a busy team's
    // budget row, which the gateway's holds also update) are held for less time.
    // A projector that appends events says so, or readers would not wait for its
    // transaction (see `event_log::NO_EVENTS_APPLICATION`).
    let application = if projectors.iter().any(|p| p.appends_events()) {
        event_log::APPENDING_PROJECTOR_APPLICATION
    } else {
        event_log::NO_EVENTS_APPLICATION
    };
    // Each statement is planned for its own batch: a plan cached while a table was small
    // (a read model grows from empty) scans it whole for every batch after, and without a
    // fresh ANALYZE nothing replaces that plan (at 100,000 teams, the budgets' load took
    // 0.3-4 s a batch).
    sqlx::query(
        "select set_config('synchronous_commit', 'off', true),
                set_config('application_name', $1, true),
                set_config('plan_cache_mode', 'force_custom_plan', true)",
    )
    .bind(application)
    .execute(&mut *tx)
    .await?;
    let names: Vec<&str> = projectors.iter().map(|p| p.name()).collect();
    let claimed = checkpoint::claim_all(&mut tx, &names).await?;
    let Some(from) = claimed.iter().map(|(_, from)| *from).min() else {
        return Ok(Step::Busy);
    };
    let events = event_log::read_after_for(&mut tx, from, config.batch_size, interests).await?;
    let Some(last) = events.last().map(|e| e.log_position()) else {
        let behind_horizon = event_log::has_events_behind_horizon(&mut tx, from).await?;
        return Ok(Step::Idle { behind_horizon });
    };
    let mut moves = Vec::with_capacity(claimed.len());
    for (name, its_from) in claimed {
        let projector = projectors
            .iter()
            .find(|p| p.name() == name)
            .expect("claimed checkpoints are the group's");
        // Events are in log order: this consumer's share starts after its own checkpoint.
        let start = events.partition_point(|e| e.log_position() <= its_from);
        let mine = &events[start..];
        if mine.is_empty() {
            continue;
        }
        projector.apply_batch(&mut tx, mine).await?;
        moves.push(checkpoint::Move {
            consumer: name,
            from: its_from,
            applied: mine.len() as i64,
        });
    }
    if !checkpoint::advance_all(&mut tx, &moves, last).await? {
        // Dropping `tx` rolls the batch back.
        return Err(ProjectionError::CheckpointMoved {
            consumer: names.join("+"),
        });
    }
    tx.commit().await?;
    Ok(Step::Applied(events.len()))
}

/// Exponential backoff with full jitter, capped.
fn backoff(attempt: u32, cap: Duration) -> Duration {
    let exp = Duration::from_millis(100).saturating_mul(1u32 << attempt.min(16));
    let ceiling = exp.min(cap);
    ceiling.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(30);
        assert!(backoff(1, cap) <= Duration::from_millis(200));
        assert!(backoff(1, cap) >= Duration::from_millis(100));
        assert!(backoff(10, cap) <= cap);
        assert!(backoff(30, cap) >= cap / 2);
    }
}
