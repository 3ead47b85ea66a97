//! Turns threshold alerts into webhook deliveries: each `ThresholdCrossed` becomes one outbox
//! row in the transaction that moves this consumer's checkpoint (so exactly one per alert).
//! Sending, with retries, is the dispatcher's job (`app/src/webhooks/mod.rs`).

use async_trait::async_trait;
use domain::usage::{BUDGET_ALERT_AGGREGATE, BudgetEvent};
use serde_json::json;
use sqlx::PgConnection;

use projections::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const NAME: &str = "alert_webhooks";

pub struct AlertWebhooks;

#[async_trait]
impl Projector for AlertWebhooks {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&[BUDGET_ALERT_AGGREGATE])
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != BUDGET_ALERT_AGGREGATE {
            return Ok(());
        }
        let BudgetEvent::ThresholdCrossed {
            team_id,
            threshold_percent,
            credit_level,
            credits,
            spend,
            request_id,
            crossed_at,
        } = event
            .decode()
            .map_err(|e| ProjectionError::decode(event, e))?;
        let payload = json!({
            "type": "budget.threshold_crossed",
            "delivery_id": event.aggregate_id,
            "team_id": team_id.as_str(),
            "threshold_percent": threshold_percent,
            "credit_level": credit_level,
            "credits": credits,
            "spend": spend,
            "request_id": request_id,
            "crossed_at": crossed_at,
            "position": event.global_position,
        });
        sqlx::query(
            "insert into webhook_deliveries (delivery_id, organization_id, team_id, event_type, payload,
                 status, position)
             select $1, t.organization_id, $2, 'budget.threshold_crossed',
                    jsonb_set($3::jsonb, '{organization_id}', to_jsonb(t.organization_id)),
                    case when exists (select 1 from organization_webhooks w
                                       where w.organization_id = t.organization_id)
                         then 'pending' else 'no_webhook' end,
                    $4
               from teams t where t.team_id = $2
             on conflict do nothing",
        )
        .bind(&event.aggregate_id)
        .bind(team_id.as_str())
        .bind(payload)
        .bind(event.global_position)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
