//! Wakes consumers when events commit: one LISTEN connection per process fans out through a
//! watch channel. Notifications can be lost (reconnects), so consumers also poll.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "saas_events";

#[derive(Clone)]
pub struct EventNotifier {
    rx: watch::Receiver<u64>,
}

impl EventNotifier {
    /// Starts listening; the task ends when `shutdown` is cancelled.
    pub async fn start(pool: &PgPool, shutdown: CancellationToken) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let (tx, rx) = watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    received = listener.recv() => match received {
                        Ok(_) => { tx.send_modify(|n| *n = n.wrapping_add(1)); }
                        Err(error) => {
                            // PgListener reconnects on the next recv; wake everyone in case
                            // a notification was lost meanwhile.
                            tracing::warn!(%error, "event listener lost its connection");
                            tx.send_modify(|n| *n = n.wrapping_add(1));
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    },
                }
            }
        });
        Ok(Self { rx })
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.rx.clone()
    }
}
