//! Seals over the event log in its global order (see the migration `event_hash_chain`). The
//! sealer is a consumer like the projectors: each batch it reads becomes one `event_seals` row
//! whose HMAC covers the previous seal, the batch's range and every event's hash and position,
//! in the order read. `verify_chain` checks both layers: each event's hash against its content
//! and its stream's previous event, and each seal against the events it covers.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::{PgConnection, PgPool, Row};

use crate::projector::{ProjectionError, Projector};
use store::event_log::{LogPosition, StoredEvent, parse_xid};

pub const SEALER: &str = "event_seals";

type HmacSha256 = Hmac<Sha256>;

/// Seals each batch of the log with a key the database never sees.
pub struct Sealer {
    key: [u8; 32],
}

impl Sealer {
    /// `key` should be derived from a secret held outside the database.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }
}

fn mac_of(
    key: &[u8; 32],
    previous: &[u8],
    from: LogPosition,
    to: LogPosition,
    events: &[(i64, Vec<u8>)],
) -> Vec<u8> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(previous);
    for n in [from.tx_id, to.tx_id] {
        mac.update(&n.to_be_bytes());
    }
    for n in [from.position, to.position, events.len() as i64] {
        mac.update(&n.to_be_bytes());
    }
    for (position, hash) in events {
        mac.update(&position.to_be_bytes());
        mac.update(hash);
    }
    mac.finalize().into_bytes().to_vec()
}

async fn last_seal(conn: &mut PgConnection) -> Result<Option<(LogPosition, Vec<u8>)>, sqlx::Error> {
    let row = sqlx::query(
        "select to_tx_id::text as tx, to_position, mac from event_seals order by seal_id desc limit 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok((
            LogPosition {
                tx_id: parse_xid(row.try_get("tx")?)?,
                position: row.try_get("to_position")?,
            },
            row.try_get("mac")?,
        ))
    })
    .transpose()
}

#[async_trait]
impl Projector for Sealer {
    fn name(&self) -> &'static str {
        SEALER
    }

    /// Only hashes and positions are needed: no payloads.
    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let (from, previous) = match last_seal(tx).await? {
            Some((to, mac)) => (to, mac),
            None => (LogPosition::START, Vec::new()),
        };
        debug_assert!(first.log_position() > from);
        let hashes: Vec<(i64, Vec<u8>)> = events
            .iter()
            .map(|e| (e.global_position, e.hash.clone().unwrap_or_default()))
            .collect();
        let to = last.log_position();
        let mac = mac_of(&self.key, &previous, from, to, &hashes);
        sqlx::query(
            "insert into event_seals (from_tx_id, from_position, to_tx_id, to_position, event_count, mac)
             values ($1::text::xid8, $2, $3::text::xid8, $4, $5, $6)",
        )
        .bind(from.tx_id.to_string())
        .bind(from.position)
        .bind(to.tx_id.to_string())
        .bind(to.position)
        .bind(events.len() as i32)
        .bind(mac)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// What `verify_chain` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub events: i64,
    /// Events whose hash does not match their content and predecessor, or whose predecessor
    /// in the stream is missing (global positions, first few).
    pub broken_links: Vec<i64>,
    pub seals: i64,
    /// Seals whose events or MAC do not match (seal ids, first few).
    pub broken_seals: Vec<i64>,
    /// Events newer than the last seal: covered by their streams' chains only, so far.
    pub unsealed: i64,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.broken_links.is_empty() && self.broken_seals.is_empty()
    }
}

const SAMPLE: usize = 20;

/// Checks every event's link and every seal. A seal is intact if it was made with any of
/// `keys` (the current seal key and, after an `ENCRYPTION_KEY` rotation, the old one).
pub async fn verify_chain(pool: &PgPool, keys: &[[u8; 32]]) -> Result<ChainReport, sqlx::Error> {
    let mut report = ChainReport {
        events: sqlx::query_scalar("select count(*) from events")
            .fetch_one(pool)
            .await?,
        ..ChainReport::default()
    };
    report.broken_links = sqlx::query_scalar(
        "select e.global_position from events e
           left join events p on p.aggregate_type = e.aggregate_type
                             and p.aggregate_id = e.aggregate_id and p.sequence = e.sequence - 1
          where e.hash is distinct from event_hash(p.hash, e)
             or (e.sequence > 1 and p.sequence is null)
          order by e.global_position limit $1",
    )
    .bind(SAMPLE as i64)
    .fetch_all(pool)
    .await?;

    let seals = sqlx::query(
        "select seal_id, from_tx_id::text as from_tx, from_position, to_tx_id::text as to_tx,
                to_position, event_count, mac
           from event_seals order by seal_id",
    )
    .fetch_all(pool)
    .await?;
    let mut previous_mac: Vec<u8> = Vec::new();
    let mut previous_to = LogPosition::START;
    let mut conn = pool.acquire().await?;
    for row in &seals {
        report.seals += 1;
        let seal_id: i64 = row.try_get("seal_id")?;
        let from = LogPosition {
            tx_id: parse_xid(row.try_get("from_tx")?)?,
            position: row.try_get("from_position")?,
        };
        let to = LogPosition {
            tx_id: parse_xid(row.try_get("to_tx")?)?,
            position: row.try_get("to_position")?,
        };
        let count: i32 = row.try_get("event_count")?;
        let mac: Vec<u8> = row.try_get("mac")?;
        let events: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            // The plain bounds on tx_id are implied by the row comparisons but let the planner
            // see how few rows match (without them it scans the whole log for every seal).
            "select global_position, hash from events
              where (tx_id, global_position) > ($1::text::xid8, $2)
                and (tx_id, global_position) <= ($3::text::xid8, $4)
                and tx_id between $1::text::xid8 and $3::text::xid8
              order by tx_id, global_position",
        )
        .bind(from.tx_id.to_string())
        .bind(from.position)
        .bind(to.tx_id.to_string())
        .bind(to.position)
        .fetch_all(&mut *conn)
        .await?;
        let intact = from == previous_to
            && events.len() == count as usize
            && keys
                .iter()
                .any(|key| mac_of(key, &previous_mac, from, to, &events) == mac);
        if !intact && report.broken_seals.len() < SAMPLE {
            report.broken_seals.push(seal_id);
        }
        previous_mac = mac;
        previous_to = to;
    }
    report.unsealed = sqlx::query_scalar(
        "select count(*) from events
          where (tx_id, global_position) > ($1::text::xid8, $2) and tx_id >= $1::text::xid8",
    )
    .bind(previous_to.tx_id.to_string())
    .bind(previous_to.position)
    .fetch_one(&mut *conn)
    .await?;
    Ok(report)
}
