//! One aggregate type's command lane: commands on the same aggregate queue up in this process,
//! and whatever queued while one append was in flight is decided against the state in memory and
//! appended together, in one statement and one commit, each command still answered with its own
//! outcome and position (group commit). A hot team then costs one append per burst, not one per
//! command waiting for the one before it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore as _};
use domain::CommandMetadata;
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::{MAX_ATTEMPTS, OnBus, OnConflict, aggregate_error};
use crate::error::{AppError, AppResult};
use store::repository::{EventStore, Snapshot};

/// Most commands decided and appended together (bounds one statement's size).
const MAX_BATCH: usize = 256;

/// Most aggregates whose state is kept after a batch (bounds memory; a team's state is well
/// under a kilobyte).
const CACHED: usize = 4096;

/// An aggregate as this process last appended it: the next batch on it starts here instead of
/// reading its snapshot and the events after it. Another process appending meanwhile makes
/// the next append collide on the stream's primary key, and the batch is decided again from
/// the database (`Lane::attempt`).
struct Cached<A> {
    state: A,
    sequence: usize,
    snapshot: Option<usize>,
}

/// One queued command and where its answer goes.
struct Queued<A: Aggregate> {
    command: A::Command,
    metadata: CommandMetadata,
    on_conflict: OnConflict,
    reply: oneshot::Sender<AppResult<i64>>,
}

/// What deciding one command against the state in memory gave.
enum Decided {
    /// Appended events up to this index in the batch's event list (exclusive end).
    Appended(usize),
    /// Valid but changed nothing.
    Unchanged,
    Refused(AppError),
}

pub struct Lane<A: OnBus> {
    store: PersistedEventStore<EventStore, A>,
    repository: EventStore,
    services: A::Services,
    pool: PgPool,
    snapshot_every: usize,
    /// Per aggregate id, the commands waiting; an entry exists while a drainer runs for it.
    waiting: Mutex<HashMap<String, Vec<Queued<A>>>>,
    /// Taken out by the (one) drainer of an id while it runs a batch, put back after.
    cache: Mutex<HashMap<String, Cached<A>>>,
}

impl<A: OnBus> Lane<A> {
    pub fn new(pool: &PgPool, services: A::Services, snapshot_every: usize) -> Arc<Self> {
        let repository = EventStore::new(pool.clone());
        Arc::new(Self {
            store: PersistedEventStore::new_snapshot_store(repository.clone(), snapshot_every)
                .with_upcasters(domain::upcast::for_cqrs()),
            repository,
            services,
            pool: pool.clone(),
            snapshot_every,
            waiting: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Queues `command` on aggregate `id` and waits for its answer: the global position of the
    /// aggregate's newest event once the command took effect. The work runs in its own task, so
    /// a caller that walks away cancels nothing half-way and stalls no one queued behind it.
    pub async fn execute(
        self: &Arc<Self>,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        on_conflict: OnConflict,
    ) -> AppResult<i64> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            command,
            metadata: metadata.clone(),
            on_conflict,
            reply,
        };
        let start_drainer = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            match waiting.entry(id.to_owned()) {
                Entry::Occupied(mut queue) => {
                    queue.get_mut().push(queued);
                    false
                }
                Entry::Vacant(slot) => {
                    slot.insert(vec![queued]);
                    true
                }
            }
        };
        if start_drainer {
            let lane = Arc::clone(self);
            let id = id.to_owned();
            tokio::spawn(async move { lane.drain(id).await });
        }
        answer.await.map_err(|_| {
            AppError::internal("the command's worker ended without answering (see the logs)")
        })?
    }

    /// Runs batches for `id` until none is waiting, then removes the entry (under the same lock
    /// that queues, so no command is left behind without a drainer).
    async fn drain(self: Arc<Self>, id: String) {
        // If this task panics, the entry goes with it: queued callers get an error, and the
        // next command starts a new drainer instead of queueing behind a dead one.
        let _guard = DrainGuard {
            lane: &self,
            id: &id,
        };
        loop {
            let batch = {
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                let Some(queue) = waiting.get_mut(&id) else {
                    return;
                };
                if queue.is_empty() {
                    waiting.remove(&id);
                    return;
                }
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect::<Vec<_>>()
            };
            self.run(&id, batch).await;
        }
    }

    /// Decides and appends a batch; if the batch as a whole fails (a database error, a unique
    /// value another aggregate holds), each command runs alone so each gets its own answer.
    async fn run(&self, id: &str, mut batch: Vec<Queued<A>>) {
        match self.attempt(id, &mut batch).await {
            Err(error) if batch.len() > 1 => {
                tracing::debug!(
                    code = error.code.as_str(),
                    commands = batch.len(),
                    "batch failed; running its commands one by one"
                );
                for queued in batch {
                    let mut alone = vec![queued];
                    let outcome = self.attempt(id, &mut alone).await;
                    answer(alone, outcome);
                }
            }
            outcome => answer(batch, outcome),
        }
    }

    /// Loads the aggregate, decides every command in order against the state in memory, and
    /// appends all their events at once. An optimistic-lock conflict (another process appended
    /// first) re-decides the commands that may re-run against the newer state, with backoff;
    /// the others are answered with the conflict and leave the batch.
    async fn attempt(
        &self,
        id: &str,
        batch: &mut Vec<Queued<A>>,
    ) -> AppResult<Vec<AppResult<i64>>> {
        let mut attempt = 0;
        let mut cached = self.take_cached(id);
        loop {
            attempt += 1;
            let from_cache = cached.is_some();
            let context = match cached.take() {
                Some(cached) => cached,
                None => {
                    let context = self
                        .store
                        .load_aggregate(id)
                        .await
                        .map_err(aggregate_error)?;
                    Cached {
                        state: context.aggregate,
                        sequence: context.current_sequence,
                        snapshot: context.current_snapshot,
                    }
                }
            };
            let loaded_at = context.sequence;
            let mut state = context.state;
            let mut events: Vec<SerializedEvent> = Vec::new();
            let mut decided = Vec::with_capacity(batch.len());
            for queued in batch.iter() {
                let before = state.clone();
                let sink = EventSink::default();
                match state
                    .handle(queued.command.clone(), &self.services, &sink)
                    .await
                {
                    Ok(()) => {
                        let new = sink.collect().await;
                        if new.is_empty() {
                            decided.push(Decided::Unchanged);
                            continue;
                        }
                        let metadata = serde_json::to_value(queued.metadata.to_map())
                            .map_err(AppError::internal)?;
                        for event in new {
                            let payload =
                                serde_json::to_value(&event).map_err(AppError::internal)?;
                            events.push(SerializedEvent::new(
                                id.to_owned(),
                                loaded_at + events.len() + 1,
                                A::TYPE.to_owned(),
                                event.event_type(),
                                event.event_version(),
                                payload,
                                metadata.clone(),
                            ));
                        }
                        decided.push(Decided::Appended(events.len()));
                    }
                    Err(error) => {
                        // `handle` may have applied events before refusing: put the state back.
                        state = before;
                        decided.push(Decided::Refused(aggregate_error(
                            AggregateError::UserError(error),
                        )));
                    }
                }
            }
            let positions = if events.is_empty() {
                self.put_cached(
                    id,
                    Cached {
                        state,
                        sequence: loaded_at,
                        snapshot: context.snapshot,
                    },
                );
                Vec::new()
            } else {
                let last = loaded_at + events.len();
                let snapshot = if last / self.snapshot_every > loaded_at / self.snapshot_every {
                    Some(Snapshot {
                        state: serde_json::to_value(&state).map_err(AppError::internal)?,
                        number: context.snapshot.map_or(1, |n| n + 1),
                    })
                } else {
                    None
                };
                let snapshot_number = snapshot.as_ref().map(|s| s.number);
                match self.repository.append::<A>(&events, snapshot).await {
                    Ok(positions) => {
                        self.put_cached(
                            id,
                            Cached {
                                state,
                                sequence: last,
                                snapshot: snapshot_number.or(context.snapshot),
                            },
                        );
                        positions
                    }
                    Err(error) => match AggregateError::<A::Error>::from(error) {
                        // The state kept from our last batch was stale (another process
                        // appended since): decide again from the database, as if first.
                        AggregateError::AggregateConflict if from_cache => {
                            attempt -= 1;
                            continue;
                        }
                        AggregateError::AggregateConflict if attempt < MAX_ATTEMPTS => {
                            let (retry, fail): (Vec<_>, Vec<_>) = std::mem::take(batch)
                                .into_iter()
                                .partition(|q| q.on_conflict == OnConflict::Retry);
                            *batch = retry;
                            answer_conflicts(fail);
                            if batch.is_empty() {
                                break Ok(Vec::new());
                            }
                            // Another process won the race: back off exponentially, with jitter.
                            let ceiling = 2u64.pow(attempt.min(7));
                            tokio::time::sleep(std::time::Duration::from_millis(
                                rand::random_range(1..=ceiling),
                            ))
                            .await;
                            continue;
                        }
                        error => return Err(aggregate_error(error)),
                    },
                }
            };
            // A command that changed nothing answers with the stream's newest event.
            let head = match positions.last() {
                Some(&last) => last,
                None => {
                    let mut conn = self.pool.acquire().await?;
                    store::event_log::stream_head(&mut conn, A::TYPE, id)
                        .await?
                        .unwrap_or(0)
                }
            };
            let answers = decided
                .into_iter()
                .map(|decided| match decided {
                    Decided::Appended(end) => Ok(positions[end - 1]),
                    Decided::Unchanged => Ok(head),
                    Decided::Refused(error) => Err(error),
                })
                .collect();
            break Ok(answers);
        }
    }
}

impl<A: OnBus> Lane<A> {
    fn take_cached(&self, id: &str) -> Option<Cached<A>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    fn put_cached(&self, id: &str, cached: Cached<A>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHED {
            // Any one goes: a miss costs one load.
            if let Some(other) = cache.keys().next().cloned() {
                cache.remove(&other);
            }
        }
        cache.insert(id.to_owned(), cached);
    }
}

/// Sends each command its answer; a whole-batch failure goes to every command of the batch.
fn answer<A: Aggregate>(batch: Vec<Queued<A>>, outcome: AppResult<Vec<AppResult<i64>>>) {
    match outcome {
        Ok(answers) => {
            for (queued, answer) in batch.into_iter().zip(answers) {
                let _ = queued.reply.send(answer);
            }
        }
        Err(error) => {
            // Only a batch of one gets here (`Lane::run` splits larger ones), so the one error
            // has one owner; any other command still in the batch is told the same in words.
            let mut error = Some(error);
            for queued in batch {
                let answer = error.take().unwrap_or_else(|| {
                    AppError::internal("the command's batch failed (see the logs)")
                });
                let _ = queued.reply.send(Err(answer));
            }
        }
    }
}

/// Commands that may not re-run and lost an optimistic race get the conflict.
fn answer_conflicts<A: OnBus>(conflicted: Vec<Queued<A>>) {
    for queued in conflicted {
        let _ = queued.reply.send(Err(aggregate_error::<A::Error>(
            AggregateError::AggregateConflict,
        )));
    }
}

/// Removes the aggregate's entry if its drainer dies without finishing (a panic).
struct DrainGuard<'a, A: OnBus> {
    lane: &'a Lane<A>,
    id: &'a str,
}

impl<A: OnBus> Drop for DrainGuard<'_, A> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut waiting = self.lane.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.remove(self.id);
        }
    }
}
