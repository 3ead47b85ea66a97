//! Wakes consumers when events commit: one LISTEN connection per process fans out to each
//! consumer's watch channel. A notification names the aggregate types appended, and only the
//! consumers reading one of them wake. Notifications can be lost (reconnects), so consumers
//! also poll, and a notification without types (or a lost connection) wakes everyone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "saas_events";

struct Subscriber {
    /// `None`: every event.
    interests: Option<Vec<&'static str>>,
    wake: watch::Sender<u64>,
}

impl Subscriber {
    fn wants(&self, types: &[&str]) -> bool {
        match &self.interests {
            None => true,
            Some(interests) => types.is_empty() || types.iter().any(|t| interests.contains(t)),
        }
    }
}

#[derive(Clone, Default)]
pub struct EventNotifier {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl EventNotifier {
    /// Starts listening; the task ends when `shutdown` is cancelled.
    pub async fn start(pool: PgPool, shutdown: CancellationToken) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let notifier = Self::default();
        let fan_out = notifier.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    received = listener.recv() => match received {
                        Ok(notification) => {
                            let types: Vec<&str> = notification
                                .payload()
                                .split(',')
                                .filter(|t| !t.is_empty())
                                .collect();
                            fan_out.wake(&types);
                        }
                        Err(error) => {
                            // PgListener reconnects on the next recv; wake everyone in case
                            // a notification was lost meanwhile.
                            tracing::warn!(%error, "event listener lost its connection");
                            fan_out.wake(&[]);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    },
                }
            }
        });
        Ok(notifier)
    }

    /// Wake-ups for events of the given aggregate types (`None`: all).
    pub fn subscribe(&self, interests: Option<&[&'static str]>) -> watch::Receiver<u64> {
        let (wake, rx) = watch::channel(0u64);
        self.lock().push(Subscriber {
            interests: interests.map(<[_]>::to_vec),
            wake,
        });
        rx
    }

    /// Wakes the subscribers reading any of `types` (all of them if `types` is empty).
    pub fn wake(&self, types: &[&str]) {
        self.lock().retain(|subscriber| {
            if subscriber.wants(types) {
                subscriber.wake.send_modify(|n| *n = n.wrapping_add(1));
            }
            !subscriber.wake.is_closed()
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_interested_consumers_wake() {
        let notifier = EventNotifier::default();
        let mut usage = notifier.subscribe(Some(&["Usage"]));
        let teams = notifier.subscribe(Some(&["Team", "ModelGroup"]));
        let mut all = notifier.subscribe(None);
        notifier.wake(&["Usage"]);
        assert!(usage.has_changed().unwrap());
        assert!(!teams.has_changed().unwrap());
        assert!(all.has_changed().unwrap());
        usage.mark_unchanged();
        all.mark_unchanged();
        // No types named: a lost connection, or an older trigger. Everyone looks.
        notifier.wake(&[]);
        assert!(usage.has_changed().unwrap());
        assert!(teams.has_changed().unwrap());
        assert!(all.has_changed().unwrap());
    }
}
