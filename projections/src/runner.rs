//! Runs one consumer: claim the checkpoint, read a batch in global order, apply it, move the
//! checkpoint, commit; then wait for a notification or the poll interval.

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
    projector: Arc<dyn Projector>,
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
        Self {
            pool,
            projector,
            config,
            progress,
        }
    }

    pub fn name(&self) -> &'static str {
        self.projector.name()
    }

    /// Applies at most one batch, atomically with its checkpoint.
    pub async fn step(&self) -> Result<Step, ProjectionError> {
        let name = self.projector.name();
        let mut tx = self.pool.begin().await?;
        // Read models are derived from the log and move with their checkpoint in this
        // transaction: a crash that lost the commit loses both, and the batch is applied again.
        // So the commit need not wait for the WAL flush, and row locks (e.g. on a busy team's
        // budget row, which the gateway's holds also update) are held for less time.
        // A projector that appends events says so, or readers would not wait for its
        // transaction (see `event_log::NO_EVENTS_APPLICATION`).
        let application = if self.projector.appends_events() {
            event_log::APPENDING_PROJECTOR_APPLICATION
        } else {
            event_log::NO_EVENTS_APPLICATION
        };
        sqlx::query(
            "select set_config('synchronous_commit', 'off', true),
                    set_config('application_name', $1, true)",
        )
        .bind(application)
        .execute(&mut *tx)
        .await?;
        let Some(from) = checkpoint::claim(&mut tx, name).await? else {
            return Ok(Step::Busy);
        };
        let events = event_log::read_after_for(
            &mut tx,
            from,
            self.config.batch_size,
            self.projector.interests(),
        )
        .await?;
        let Some(last) = events.last().map(|e| e.log_position()) else {
            let behind_horizon = event_log::has_events_behind_horizon(&mut tx, from).await?;
            return Ok(Step::Idle { behind_horizon });
        };
        self.projector.apply_batch(&mut tx, &events).await?;
        if !checkpoint::advance(&mut tx, name, from, last, events.len() as i64).await? {
            // Dropping `tx` rolls the batch back.
            return Err(ProjectionError::CheckpointMoved {
                consumer: name.to_owned(),
            });
        }
        tx.commit().await?;
        self.progress.bump();
        tracing::debug!(
            consumer = name,
            events = events.len(),
            position = last.position,
            "applied batch"
        );
        Ok(Step::Applied(events.len()))
    }

    /// Runs until `shutdown` is cancelled. Errors are logged and retried with backoff: a
    /// consumer stalls rather than skip an event it cannot apply.
    pub async fn run(self, notifier: EventNotifier, shutdown: CancellationToken) {
        let name = self.projector.name();
        if let Err(error) = checkpoint::register(&self.pool, name).await {
            tracing::warn!(consumer = name, %error, "could not register consumer; will retry");
        }
        let mut wakeups = notifier.subscribe(self.projector.interests());
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
                    tracing::error!(consumer = name, %error, attempt = failures, retry_in_ms = pause.as_millis() as u64, "projection batch failed");
                    if let Err(error) = checkpoint::register(&self.pool, name).await {
                        tracing::debug!(consumer = name, %error, "register retry failed");
                    }
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
        tracing::info!(consumer = name, "consumer stopped");
    }
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
