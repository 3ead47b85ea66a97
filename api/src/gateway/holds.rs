//! Budget holds for hard-mode teams. Before a request is forwarded its worst-case price is held;
//! admission is serialized per team (a transaction-scoped advisory lock) and succeeds only if
//! credits - projected spend - live holds covers it. After the call the hold takes the real
//! price and the usage event's position; it keeps counting until the budgets projector has
//! applied that event (then it is in the spend), so nothing is ever counted zero times.
//! Holds of crashed requests lapse after `HOLD_TTL`.

use rust_decimal::Decimal;
use sqlx::PgPool;

pub const HOLD_TTL_SECS: i64 = 900;

/// Holds that still count for a team: not lapsed, and not yet part of the projected spend.
const LIVE_HOLDS: &str = "
    from budget_holds h
   where h.team_id = $1 and h.expires_at > now()
     and (h.settled_position is null or not exists (
          select 1 from events e, consumer_checkpoints c
           where c.consumer_name = 'budgets' and e.global_position = h.settled_position
             and (e.tx_id, e.global_position) <= (c.last_tx_id, c.last_position)))";

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
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('budget:' || $1, 0))")
        .bind(team_id)
        .execute(&mut *tx)
        .await?;
    // Holds already in the spend, or lapsed, are dropped here (cheap, and keeps the table small).
    sqlx::query(&format!(
        "delete from budget_holds d where d.team_id = $1
            and d.request_key not in (select h.request_key {LIVE_HOLDS})"
    ))
    .bind(team_id)
    .execute(&mut *tx)
    .await?;
    let available: Decimal = sqlx::query_scalar(&format!(
        "select coalesce((select credits - spend from team_budgets where team_id = $1), 0)
              - coalesce((select sum(h.amount) {LIVE_HOLDS}), 0)"
    ))
    .bind(team_id)
    .fetch_one(&mut *tx)
    .await?;
    // A team with nothing left is refused even for a call LiteLLM would price at zero.
    if available < amount || available <= Decimal::ZERO {
        return Ok(Admission::Refused { available });
    }
    sqlx::query(
        "insert into budget_holds (request_key, team_id, amount, expires_at)
         values ($1, $2, $3, now() + $4 * interval '1 second')",
    )
    .bind(request_key)
    .bind(team_id)
    .bind(amount)
    .bind(HOLD_TTL_SECS as f64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Admission::Held)
}

/// The request's real price, recorded at `position`, replaces the worst case.
pub async fn settle(
    pool: &PgPool,
    request_key: &str,
    price: Decimal,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update budget_holds set amount = $2, settled_position = $3 where request_key = $1",
    )
    .bind(request_key)
    .bind(price)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// The request was not served (or cost nothing): its hold goes.
pub async fn release(pool: &PgPool, request_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from budget_holds where request_key = $1")
        .bind(request_key)
        .execute(pool)
        .await?;
    Ok(())
}
