//! Budget holds for hard-mode teams, as rows of `budget_holds` counted in `team_budgets.held`;
//! here, beside the budgets projector that settles them, so one module writes both tables.
//! A hold is granted by one UPDATE whose WHERE checks `credits - spend - held` on the very row
//! it locks (concurrent grants of a team queue on the row and each re-checks the latest values).
//! The gateway takes holds in chunks (leases, `app::gateway::leases`) and spends them request by
//! request in memory; each usage record names its hold and the worst case it took from it, and
//! the budgets projector subtracts that part in the transaction that adds the real price to
//! `spend`. So between the answer and the projection (milliseconds) the worst case still
//! counts: admission is briefly conservative, never generous. A hold whose requests never
//! record usage (a crash) lapses after `HOLD_TTL_SECS`.

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};

pub const HOLD_TTL_SECS: f64 = 900.0;

/// A grant is never more than this share of what the team has left, so that other replicas
/// (and other requests of different sizes) still find credit.
const LEASE_SHARE: i64 = 4;

#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// This much was set aside under the hold's key.
    Granted(Decimal),
    /// What was left when the request asked for more.
    Refused { available: Decimal },
}

/// Sets aside credit for at least one request costing up to `worst`: `requests` worst cases, but
/// no more than a quarter of what the team has left (and never less than one worst case).
pub async fn grant(
    pool: &PgPool,
    team_id: &str,
    hold_key: &str,
    worst: Decimal,
    requests: u32,
) -> Result<Grant, sqlx::Error> {
    // The chunk is sized from a snapshot; the UPDATE's WHERE re-checks it against the locked
    // row, so a stale snapshot can only size the chunk, never let it exceed what is left.
    // A team with nothing left is refused even for a call priced at zero.
    let (granted, available): (Option<Decimal>, Option<Decimal>) = sqlx::query_as(
        "with want as (
             select greatest($3, least((credits - spend - held) / $5, $3 * $6)) as amount
               from team_budgets where team_id = $1),
         upd as (
             update team_budgets b set held = b.held + want.amount from want
              where b.team_id = $1 and b.credits - b.spend - b.held >= want.amount
                and b.credits - b.spend - b.held > 0
          returning want.amount),
         ins as (
             insert into budget_holds (request_key, team_id, amount, expires_at)
             select $2, $1, amount, now() + $4 * interval '1 second' from upd
          returning amount)
         select (select amount from ins),
                (select credits - spend - held from team_budgets where team_id = $1)",
    )
    .bind(team_id)
    .bind(hold_key)
    .bind(worst)
    .bind(HOLD_TTL_SECS)
    .bind(Decimal::from(LEASE_SHARE))
    .bind(Decimal::from(requests.max(1)))
    .fetch_one(pool)
    .await?;
    Ok(match granted {
        Some(amount) => Grant::Granted(amount),
        None => Grant::Refused {
            available: available.unwrap_or_default(),
        },
    })
}

/// Gives `amount` of a hold back to the team (what a lease did not use, or the part of a request
/// that will never be projected). An emptied hold is swept by `expire`.
pub async fn give_back(pool: &PgPool, hold_key: &str, amount: Decimal) -> Result<(), sqlx::Error> {
    if amount.is_zero() {
        return Ok(());
    }
    sqlx::query(
        "with h as (update budget_holds set amount = amount - $2 where request_key = $1
                    returning team_id)
         update team_budgets b set held = b.held - $2 from h where b.team_id = h.team_id",
    )
    .bind(hold_key)
    .bind(amount)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops holds of requests that never settled (their process died), and emptied ones. Returns
/// how many teams got credit back.
pub async fn expire(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "with h as (delete from budget_holds where expires_at < now() or amount <= 0 returning team_id, amount),
              t as (select team_id, sum(amount) as amount from h group by team_id having sum(amount) <> 0)
         update team_budgets b set held = b.held - t.amount from t where b.team_id = t.team_id",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The gateway's holds for requests whose price just entered the spend are released in the
/// same transaction: held credit is never counted twice, nor zero times. Each request gives
/// back the part of its hold it took (a hold emptied this way is swept later); an older record
/// without that part gives back its whole hold. Returns what each team gets back; `save`
/// subtracts it.
pub(super) async fn release(
    tx: &mut PgConnection,
    holds: &[(String, Option<Decimal>)],
) -> Result<HashMap<String, Decimal>, sqlx::Error> {
    if holds.is_empty() {
        return Ok(HashMap::new());
    }
    let (parts, whole): (Vec<_>, Vec<_>) = holds.iter().partition(|(_, amount)| amount.is_some());
    let (keys, amounts): (Vec<&str>, Vec<Decimal>) = parts
        .iter()
        .map(|(key, amount)| (key.as_str(), amount.unwrap_or_default()))
        .unzip();
    let whole: Vec<&str> = whole.iter().map(|(key, _)| key.as_str()).collect();
    // Parts are summed per hold first: an UPDATE joined to several rows of one hold would
    // apply only one of them.
    let rows: Vec<(String, Decimal)> = sqlx::query_as(
        "with p as (select k, sum(a) as a from unnest($1::text[], $2::numeric[]) as x(k, a) group by k),
              taken as (update budget_holds h set amount = h.amount - p.a from p
                         where h.request_key = p.k returning h.team_id, p.a as amount),
              whole as (delete from budget_holds where request_key = any($3)
                        returning team_id, amount),
              released as (select * from taken union all select * from whole)
         select team_id, sum(amount) from released group by team_id",
    )
    .bind(&keys)
    .bind(&amounts)
    .bind(&whole)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().collect())
}
