//! Usage of gateway calls, written to the ledger in batches. Each answered call hands its record
//! to one background task, which appends whatever has queued up while the previous append was
//! in flight as one transaction (group commit): one commit for many calls instead of one each,
//! which keeps the request path's tail latency low under load. A record still queued when the
//! process dies is not lost: LiteLLM's spend log of the same request id is ingested later, and
//! its hold lapses.

use std::sync::Arc;
use std::time::Duration;

use domain::CommandMetadata;
use domain::usage::UsageRecord;
use tokio::sync::mpsc;

use super::leases::{Leases, Ticket};
use crate::usage::Ledger;

/// At most this many records per append.
const BATCH: usize = 512;
/// How long the first record of a batch waits for company. Each append wakes every consumer;
/// fewer, larger appends leave the CPU to the requests. The answer has already left.
const LINGER: Duration = Duration::from_millis(20);

struct Pending {
    record: UsageRecord,
    metadata: String,
    ticket: Option<Ticket>,
}

#[derive(Clone)]
pub struct UsageRecorder {
    queue: mpsc::UnboundedSender<Pending>,
}

impl UsageRecorder {
    /// Starts the writer; it stops when the last recorder is dropped, after writing the queue.
    pub fn start(runtime: &tokio::runtime::Handle, ledger: Ledger, leases: Arc<Leases>) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        runtime.spawn(write(ledger, leases, receiver));
        Self { queue }
    }

    /// Queues a call's record; `ticket` is the hold part it names.
    pub fn record(&self, record: UsageRecord, ticket: Option<Ticket>) {
        let actor = format!("team:{}", record.team_id.as_str());
        let metadata = CommandMetadata::new(actor, chrono::Utc::now()).to_map();
        let metadata = serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into());
        if self
            .queue
            .send(Pending {
                record,
                metadata,
                ticket,
            })
            .is_err()
        {
            tracing::warn!("usage writer stopped; the call is left to spend ingestion");
        }
    }
}

async fn write(
    ledger: Ledger,
    leases: Arc<Leases>,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            tokio::time::sleep(LINGER).await;
            while batch.len() < BATCH
                && let Ok(pending) = receiver.try_recv()
            {
                batch.push(pending);
            }
        }
        let records = batch.iter().map(|p| (&p.record, p.metadata.clone()));
        match ledger.append_each(records).await {
            Ok((_, mut opened)) => {
                for pending in batch.drain(..) {
                    // LiteLLM's push recorded it first, without our hold: give its part back.
                    if !opened.remove(&pending.record.stream_id())
                        && let Some(ticket) = &pending.ticket
                    {
                        leases
                            .give_back(pending.record.team_id.as_str(), ticket)
                            .await;
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, calls = batch.len(), "usage of LLM calls could not be recorded; spend ingestion will");
                batch.clear();
            }
        }
    }
}
