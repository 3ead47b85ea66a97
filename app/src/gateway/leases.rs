//! Admission for hard-mode teams without a database round trip per request. Each process takes
//! a team's credit in chunks (a lease: one hold in `budget_holds`, counted in the team's `held`)
//! and admits requests from it in memory, each taking its worst case. What a lease does not use
//! goes back when it runs short, sits idle, or grows old. Since every chunk is granted against
//! the team's row, the sum over all processes never exceeds what the team has left: a lease can
//! refuse a request another replica's lease would have fit (conservative), never admit one the
//! credits do not cover. A busy team's leases grow with its pace and the next one is fetched
//! when half of the current one is left, so its requests seldom wait for the database and its
//! budget row is not written every few dozen requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::sync::Mutex;

use projections::budgets::holds::{self, Grant};

/// A lease is handed back this long after it was granted, well inside the hold's TTL.
const MAX_AGE: Duration = Duration::from_secs(60);

/// A lease asks for this many worst cases at first and for a team that is not busy...
const MIN_REQUESTS: u32 = 32;
/// ...and doubles while a lease lasts less than `SPAN` (halves while one lasts more than four
/// times it), up to this many.
const MAX_REQUESTS: u32 = 2048;
/// How long a lease should last at the team's pace: long enough that the next one, fetched
/// at half, arrives before it ends, short enough that little credit sits in one process.
const SPAN: Duration = Duration::from_millis(250);

/// One request's part of a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub hold_key: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Held(Ticket),
    /// What the team had left when the request asked for more.
    Refused {
        available: Decimal,
    },
}

/// A granted chunk not yet in use: the next lease, fetched while the current one still admits.
#[derive(Debug)]
struct Spare {
    hold_key: String,
    amount: Decimal,
    granted_at: Instant,
}

#[derive(Debug)]
struct Lease {
    hold_key: Option<String>,
    remaining: Decimal,
    /// The chunk's size when granted, to tell when it runs low.
    granted: Decimal,
    granted_at: Instant,
    last_used: Instant,
    spare: Option<Spare>,
    /// A spare was asked for since this lease was installed (asked once, granted or not).
    spare_asked: bool,
    /// How many worst cases the next grant asks for (kept across leases: the team's pace).
    requests: u32,
    /// When this lease began admitting (a spare is granted before it is installed).
    installed_at: Instant,
}

impl Lease {
    fn empty() -> Self {
        Self {
            hold_key: None,
            remaining: Decimal::ZERO,
            granted: Decimal::ZERO,
            granted_at: Instant::now(),
            last_used: Instant::now(),
            spare: None,
            spare_asked: false,
            requests: MIN_REQUESTS,
            installed_at: Instant::now(),
        }
    }

    /// Makes a granted chunk the current lease, keeping any spare.
    fn install(&mut self, hold_key: String, granted: Decimal, granted_at: Instant) {
        *self = Self {
            hold_key: Some(hold_key),
            remaining: granted,
            granted,
            granted_at,
            last_used: Instant::now(),
            spare: self.spare.take(),
            spare_asked: false,
            requests: self.requests,
            installed_at: Instant::now(),
        };
    }

    fn take(&mut self, worst: Decimal) -> Option<Ticket> {
        let key = self.hold_key.as_ref()?;
        if self.remaining < worst || self.granted_at.elapsed() >= MAX_AGE {
            return None;
        }
        self.remaining -= worst;
        self.last_used = Instant::now();
        Some(Ticket {
            hold_key: key.clone(),
            amount: worst,
        })
    }

    /// Below half of its chunk, with no spare yet: time to fetch the next one, so the request
    /// that empties this lease does not wait for the database.
    fn wants_spare(&self) -> bool {
        !self.spare_asked && self.spare.is_none() && self.remaining * LOW_WATER < self.granted
    }

    /// Sizes the next grant from how fast this lease's first half went (called when the spare
    /// is asked for): the whole lease lasts about twice that.
    fn pace(&mut self) {
        let lasts = self.installed_at.elapsed() * 2;
        if lasts < SPAN {
            self.requests = (self.requests * 2).min(MAX_REQUESTS);
        } else if lasts > SPAN * 4 {
            self.requests = (self.requests / 2).max(MIN_REQUESTS);
        }
    }
}

/// A lease asks for its successor when less than 1/LOW_WATER of it is left.
const LOW_WATER: Decimal = Decimal::from_parts(2, 0, 0, false, 0);

/// This process's leases, one per busy hard-mode team.
pub struct Leases {
    pool: PgPool,
    teams: SyncMutex<HashMap<String, Arc<Mutex<Lease>>>>,
}

impl Leases {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            teams: SyncMutex::default(),
        }
    }

    fn lease_of(&self, team_id: &str) -> Arc<Mutex<Lease>> {
        let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
        teams
            .entry(team_id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(Lease::empty())))
            .clone()
    }

    /// Admits a request costing at most `worst` for `team_id`, or says what is left.
    pub async fn admit(&self, team_id: &str, worst: Decimal) -> Result<Admission, sqlx::Error> {
        let shared = self.lease_of(team_id);
        let mut lease = shared.lock().await;
        if let Some(ticket) = lease.take(worst) {
            self.fetch_spare_if_low(team_id, &shared, &mut lease, worst);
            return Ok(Admission::Held(ticket));
        }
        // The current lease is spent: switch to the spare fetched ahead, if there is one, and
        // give the old remainder back off the request's path.
        if let Some(spare) = lease.spare.take() {
            let (old_key, old_remaining) = (lease.hold_key.take(), lease.remaining);
            lease.install(spare.hold_key, spare.amount, spare.granted_at);
            if let Some(key) = old_key {
                let pool = self.pool.clone();
                tokio::spawn(async move { give_back_or_lapse(&pool, &key, old_remaining).await });
            }
            if let Some(ticket) = lease.take(worst) {
                self.fetch_spare_if_low(team_id, &shared, &mut lease, worst);
                return Ok(Admission::Held(ticket));
            }
        }
        // Too little left here (or none yet): hand the rest back, then ask for a new chunk
        // while this request (and any behind it for the team) waits.
        self.hand_back(&mut lease).await;
        crate::metrics::lease_granted("on_demand");
        let hold_key = uuid::Uuid::new_v4().to_string();
        match holds::grant(&self.pool, team_id, &hold_key, worst, lease.requests).await? {
            Grant::Granted(amount) => {
                // The grant is at least `worst`: this request's part comes out of it at once.
                lease.install(hold_key.clone(), amount, Instant::now());
                lease.remaining -= worst;
                Ok(Admission::Held(Ticket {
                    hold_key,
                    amount: worst,
                }))
            }
            Grant::Refused { available } => Ok(Admission::Refused { available }),
        }
    }

    /// Fetches the next chunk in the background when the lease runs low. The spare is a hold
    /// like any other (counted in the team's `held`), so the credit bound is unchanged; near
    /// the end of the credits it is smaller or refused, and the lease runs out as before.
    fn fetch_spare_if_low(
        &self,
        team_id: &str,
        shared: &Arc<Mutex<Lease>>,
        lease: &mut Lease,
        worst: Decimal,
    ) {
        if !lease.wants_spare() {
            return;
        }
        lease.spare_asked = true;
        lease.pace();
        crate::metrics::lease_granted("ahead");
        let requests = lease.requests;
        let (pool, team_id, shared) = (self.pool.clone(), team_id.to_owned(), shared.clone());
        tokio::spawn(async move {
            let hold_key = uuid::Uuid::new_v4().to_string();
            match holds::grant(&pool, &team_id, &hold_key, worst, requests).await {
                Ok(Grant::Granted(amount)) => {
                    let mut lease = shared.lock().await;
                    if lease.spare.is_none() {
                        lease.spare = Some(Spare {
                            hold_key,
                            amount,
                            granted_at: Instant::now(),
                        });
                    } else {
                        drop(lease);
                        give_back_or_lapse(&pool, &hold_key, amount).await;
                    }
                }
                Ok(Grant::Refused { .. }) => {}
                Err(error) => {
                    tracing::debug!(%error, "no spare lease fetched; the next one is fetched on demand")
                }
            }
        });
    }

    /// A request that was not served (or will be recorded without its hold) gives its part
    /// back: to its lease while that is still in use here, else to the team.
    pub async fn give_back(&self, team_id: &str, ticket: &Ticket) {
        let lease = self.lease_of(team_id);
        {
            let mut lease = lease.lock().await;
            if lease.hold_key.as_deref() == Some(ticket.hold_key.as_str()) {
                lease.remaining += ticket.amount;
                return;
            }
        }
        if let Err(error) = holds::give_back(&self.pool, &ticket.hold_key, ticket.amount).await {
            tracing::warn!(%error, "part of a budget hold could not be given back; it lapses by itself");
        }
    }

    /// Hands back leases unused for `idle` (or older than their age limit), so their credit
    /// is visible to other replicas and to the team's budget again.
    pub async fn hand_back_idle(&self, idle: Duration) {
        let leases: Vec<(String, Arc<Mutex<Lease>>)> = {
            let teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
            teams.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (team_id, lease) in leases {
            let Ok(mut guard) = lease.try_lock() else {
                continue;
            };
            if (guard.hold_key.is_some() || guard.spare.is_some())
                && (guard.last_used.elapsed() >= idle || guard.granted_at.elapsed() >= MAX_AGE)
            {
                self.hand_back(&mut guard).await;
            }
            if guard.hold_key.is_none() && guard.last_used.elapsed() >= idle {
                drop(guard);
                let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
                // Only if no request holds it meanwhile.
                if teams
                    .get(&team_id)
                    .is_some_and(|l| Arc::strong_count(l) == 2)
                {
                    teams.remove(&team_id);
                }
            }
        }
    }

    /// Hands back every lease (at shutdown).
    pub async fn hand_back_all(&self) {
        self.hand_back_idle(Duration::ZERO).await;
    }

    async fn hand_back(&self, lease: &mut Lease) {
        if let Some(key) = lease.hold_key.take() {
            give_back_or_lapse(&self.pool, &key, lease.remaining).await;
        }
        lease.remaining = Decimal::ZERO;
        if let Some(spare) = lease.spare.take() {
            give_back_or_lapse(&self.pool, &spare.hold_key, spare.amount).await;
        }
    }
}

async fn give_back_or_lapse(pool: &PgPool, hold_key: &str, amount: Decimal) {
    if let Err(error) = holds::give_back(pool, hold_key, amount).await {
        tracing::warn!(%error, "an unused budget lease could not be handed back; it lapses by itself");
    }
}
