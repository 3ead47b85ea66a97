//! Budget holds for hard-mode teams, one statement per request on the team's row. Before a
//! request is forwarded its worst-case price is added to `team_budgets.held` by an UPDATE whose
//! WHERE checks `credits - spend - held` on the very row it locks (concurrent requests of a team
//! queue on the row and each re-checks the latest values). The usage record names the hold; the
//! budgets projector deletes it and subtracts it from `held` in the transaction that adds the
//! real price to `spend`. So between the answer and the projection (milliseconds) the worst case
//! still counts: admission is briefly conservative, never generous. A hold whose request never
//! records usage (a crash) lapses after `HOLD_TTL_SECS`.

use rust_decimal::Decimal;
use sqlx::PgPool;

pub const HOLD_TTL_SECS: f64 = 900.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Held,
    /// What was left when the request asked for more.
    Refused {
        available: Decimal,
    },
}

pub async fn reserve(
    pool: &PgPool,
    team_id: &str,
    request_key: &str,
    amount: Decimal,
) -> Result<Admission, sqlx::Error> {
    // A team with nothing left is refused even for a call LiteLLM would price at zero.
    let (held, available): (bool, Option<Decimal>) = sqlx::query_as(
        "with upd as (
             update team_budgets set held = held + $3
              where team_id = $1 and credits - spend - held >= $3 and credits - spend - held > 0
          returning team_id),
         ins as (
             insert into budget_holds (request_key, team_id, amount, expires_at)
             select $2, team_id, $3, now() + $4 * interval '1 second' from upd
          returning 1)
         select exists (select 1 from ins),
                (select credits - spend - held from team_budgets where team_id = $1)",
    )
    .bind(team_id)
    .bind(request_key)
    .bind(amount)
    .bind(HOLD_TTL_SECS)
    .fetch_one(pool)
    .await?;
    Ok(if held {
        Admission::Held
    } else {
        Admission::Refused {
            available: available.unwrap_or_default(),
        }
    })
}

/// The request was not served: its hold goes.
pub async fn release(pool: &PgPool, request_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with h as (delete from budget_holds where request_key = $1 returning team_id, amount)
         update team_budgets b set held = b.held - h.amount from h where b.team_id = h.team_id",
    )
    .bind(request_key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops holds of requests that never settled (their process died). Returns how many.
pub async fn expire(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "with h as (delete from budget_holds where expires_at < now() returning team_id, amount),
              t as (select team_id, sum(amount) as amount from h group by team_id)
         update team_budgets b set held = b.held - t.amount from t where b.team_id = t.team_id",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
