//! Rebuilding read models from the log while the service runs, verifying them against a
//! replay, and finding events altered behind the application's back.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, test_config};

/// Organizations, teams, credits, group changes, suspensions, usage and a job.
async fn mixed_workload(app: &TestApp) {
    app.seed_catalog().await;
    for (path, body) in [
        (
            "/api/organizations/create",
            json!({"organization_id": "org_beta", "name": "Beta"}),
        ),
        (
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_1", "team_alias": "One",
                   "model_groups": ["gpt"], "credits": "10", "markup_percent": 20}),
        ),
        (
            "/api/teams/create",
            json!({"organization_id": "org_beta", "team_id": "team_2", "team_alias": "Two",
                   "model_groups": ["claude"], "credits": "0.01", "budget_mode": "soft"}),
        ),
        ("/api/teams/team_1/credits/add", json!({"amount": "5.25"})),
        (
            "/api/teams/team_1/model-groups/assign",
            json!({"group_name": "claude"}),
        ),
        ("/api/teams/team_2/suspend", json!({"reason": "audit"})),
        (
            "/api/organizations/org_beta/rename",
            json!({"name": "Beta Corp"}),
        ),
    ] {
        let (status, body) = app.post_json(path, body).await;
        assert!(status < 300, "{path}: {body}");
    }
    // Accounts, their roles and keys are read models too.
    let (status, account) = app
        .post_json(
            "/api/accounts/create",
            json!({"email": "ana@example.com", "display_name": "Ana", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let id = account["account_id"].as_str().unwrap();
    for (path, body) in [
        (
            format!("/api/accounts/{id}/role"),
            json!({"role": "billing"}),
        ),
        (
            format!("/api/accounts/{id}/api-keys"),
            json!({"name": "export"}),
        ),
        (format!("/api/accounts/{id}/disable"), json!({})),
    ] {
        let (status, body) = app.post_json(&path, body).await;
        assert!(status < 300, "{path}: {body}");
    }
    let records: Vec<Value> = (0..30)
        .map(|i| {
            json!({"request_id": format!("req_{i}"), "team_id": if i % 3 == 0 { "team_2" } else { "team_1" },
                   "model": if i % 2 == 0 { "gpt-4o" } else { "claude-3-5-sonnet" },
                   "prompt_tokens": 100 + i, "completion_tokens": 10, "provider_cost": format!("0.00{}", i + 1),
                   "occurred_at": Utc::now().to_rfc3339()})
        })
        .collect();
    let (status, body) = app
        .post_json("/api/usage/records", json!({"records": records}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Every consumer has caught up with the log.
    let head: i64 = sqlx::query_scalar("select max(global_position) from events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.get_until(
        "/api/teams/team_1/usage",
        Duration::from_secs(10),
        "usage projected",
        |u| u["request_count"] == 20,
    )
    .await;
    let (status, _) = app.get_json("/api/teams/team_2", Some(head)).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let behind: i64 = sqlx::query_scalar(
            "select count(*) from consumer_checkpoints where last_position < $1",
        )
        .bind(head)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if behind == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "consumers lag");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn answers(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/teams/team_1",
        "/api/teams/team_2",
        "/api/teams",
        "/api/organizations",
        "/api/model-groups",
        "/api/teams/team_1/usage",
        "/api/teams/team_2/budget",
        "/api/usage/teams",
        "/api/accounts",
    ] {
        let (status, mut body) = app.get_json(path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        // Sync status moves on its own (no LiteLLM here); it is not a read model.
        if let Some(object) = body.as_object_mut() {
            object.remove("litellm_sync");
        }
        all.push(body);
    }
    all
}

#[tokio::test]
async fn replay_and_verify_agree_with_the_live_models() {
    let app = spawn_app().await;
    mixed_workload(&app).await;
    let diffs = api::maintenance::verify(&app.pool, None).await.unwrap();
    assert!(
        diffs.is_empty(),
        "live models differ from a replay: {diffs:?}"
    );

    let before = answers(&app).await;
    api::maintenance::replay(&app.pool, None).await.unwrap();
    assert_eq!(answers(&app).await, before, "a replay changed an answer");
    // The service keeps projecting into the swapped-in tables.
    let (status, body) = app
        .post_json("/api/teams/team_1/credits/add", json!({"amount": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    let position = body["position"].as_i64().unwrap();
    let (_, team) = app.get_json("/api/teams/team_1", Some(position)).await;
    assert_eq!(team["credits"].to_string(), "16.25");
    // The swapped-in tables have the indexes the migrations made, under their names.
    let indexes: Vec<String> = sqlx::query_scalar(
        "select indexname::text from pg_indexes where schemaname = 'public'
            and tablename in ('usage_records', 'usage_daily', 'teams') order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for expected in [
        "usage_records_team_time_idx",
        "usage_records_pkey",
        "usage_daily_org_idx",
        "teams_model_groups_idx",
        "teams_organization_idx",
    ] {
        assert!(
            indexes.iter().any(|i| i == expected),
            "{expected} missing: {indexes:?}"
        );
    }
    // No scratch schema is left behind.
    let leftovers: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.schemata where schema_name like 'rebuild_%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0);
}

#[tokio::test]
async fn verify_finds_a_read_model_changed_by_hand_and_replay_repairs_it() {
    let app = spawn_app().await;
    mixed_workload(&app).await;
    sqlx::query("update usage_daily set price = price + 1 where team_id = 'team_1'")
        .execute(&app.pool)
        .await
        .unwrap();
    let diffs = api::maintenance::verify(&app.pool, None).await.unwrap();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].0, "usage");
    assert_eq!(diffs[0].1.table, "usage_daily");
    assert!(diffs[0].1.only_live > 0);

    api::maintenance::replay(&app.pool, Some("usage"))
        .await
        .unwrap();
    assert!(
        api::maintenance::verify(&app.pool, None)
            .await
            .unwrap()
            .is_empty()
    );
    let unknown = api::maintenance::replay(&app.pool, Some("alert_webhooks")).await;
    assert!(
        unknown.unwrap_err().to_string().contains("can be rebuilt"),
        "a reactor is not rebuilt"
    );
}

async fn sealed_report(app: &TestApp) -> projections::seals::ChainReport {
    let key = test_config(&app.database_url).seal_key();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = projections::seals::verify_chain(&app.pool, &[key])
            .await
            .unwrap();
        if report.unsealed == 0 {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sealed: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `sql` with the append-only guard off, as someone with direct database access could.
async fn tamper(app: &TestApp, sql: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("alter table events disable trigger events_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table events enable trigger events_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_chain_finds_an_edited_event_even_with_its_hash_recomputed() {
    let app = spawn_app().await;
    mixed_workload(&app).await;
    let report = sealed_report(&app).await;
    assert!(report.is_intact(), "{report:?}");
    assert!(report.seals > 0);
    let key = test_config(&app.database_url).seal_key();

    // Edited: more credits than were ever granted.
    let credits_added: i64 = sqlx::query_scalar(
        "select global_position from events where event_type = 'CreditsAdded' limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    tamper(
        &app,
        &format!(
            "update events set payload = replace(payload::text, '5.25', '500.25')::json
              where global_position = {credits_added}"
        ),
    )
    .await;
    let report = projections::seals::verify_chain(&app.pool, &[key])
        .await
        .unwrap();
    assert_eq!(report.broken_links, [credits_added], "{report:?}");

    // The editor recomputes the stream's hashes too: the links pass, the keyed seal does not.
    tamper(
        &app,
        "do $$ declare e events; prev bytea; begin
           for e in select * from events where aggregate_type = 'Team' and aggregate_id = 'team_1'
                     order by sequence loop
             prev := event_hash(prev, e);
             update events set hash = prev where global_position = e.global_position;
           end loop; end $$",
    )
    .await;
    let report = projections::seals::verify_chain(&app.pool, &[key])
        .await
        .unwrap();
    assert!(report.broken_links.is_empty(), "{report:?}");
    assert!(!report.broken_seals.is_empty(), "{report:?}");
}

#[tokio::test]
async fn the_chain_finds_deleted_and_reordered_events() {
    let app = spawn_app().await;
    mixed_workload(&app).await;
    let key = test_config(&app.database_url).seal_key();
    assert!(sealed_report(&app).await.is_intact());

    // A usage record (a stream of one event) vanishes: only the seals can tell.
    tamper(
        &app,
        "delete from events where aggregate_type = 'Usage' and aggregate_id = 'team_1:req_7'",
    )
    .await;
    let report = projections::seals::verify_chain(&app.pool, &[key])
        .await
        .unwrap();
    assert!(report.broken_links.is_empty(), "{report:?}");
    assert_eq!(report.broken_seals.len(), 1, "{report:?}");

    // Two events of a stream swap places in the global order.
    let app = spawn_app().await;
    mixed_workload(&app).await;
    assert!(sealed_report(&app).await.is_intact());
    tamper(
        &app,
        "update events set recorded_at = recorded_at - interval '1 hour'
          where aggregate_type = 'Team' and aggregate_id = 'team_1' and sequence = 2",
    )
    .await;
    let report = projections::seals::verify_chain(&app.pool, &[key])
        .await
        .unwrap();
    assert!(!report.is_intact(), "{report:?}");
}

#[tokio::test]
async fn an_event_stored_in_an_older_shape_still_replays() {
    let app = spawn_app().await;
    mixed_workload(&app).await;
    // A gateway call recorded before holds became leases: one hold per request, named by
    // `hold_key` in a version 1.0 `UsageRecorded`.
    sqlx::query(
        "insert into budget_holds (request_key, team_id, amount, expires_at)
         values ('req-old', 'team_1', 0.5, now() + interval '1 hour')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("update team_budgets set held = held + 0.5 where team_id = 'team_1'")
        .execute(&app.pool)
        .await
        .unwrap();
    let v1 = json!({"UsageRecorded": {"request_id": "chatcmpl-old", "team_id": "team_1",
        "organization_id": "org_acme", "key_fingerprint": null, "model": "gpt-4o",
        "provider_model": null, "prompt_tokens": 12, "completion_tokens": 20, "cached_tokens": 0,
        "provider_cost": "0.25", "markup_percent": "20", "price": "0.3", "status": "success",
        "latency_ms": 80, "occurred_at": Utc::now(), "job_id": null, "source": "gateway",
        "hold_key": "req-old"}});
    app.insert_raw_event("Usage", "chatcmpl-old", v1).await;
    let budget = app
        .get_until(
            "/api/teams/team_1/budget",
            Duration::from_secs(10),
            "the old record released its hold",
            |b| b["held"] == json!(0) && b["request_count"] == 21,
        )
        .await;
    assert_eq!(budget["held"].to_string(), "0", "{budget}");
    let hold_rows: i64 = sqlx::query_scalar("select count(*) from budget_holds")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(hold_rows, 0);
    // A replay reads it the same way.
    let diffs = api::maintenance::verify(&app.pool, None).await.unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
}

/// One credit for `team_rot`, under one Idempotency-Key whoever sends it when.
async fn add_one_credit_once(app: &TestApp) -> reqwest::Response {
    app.admin_post("/api/teams/team_rot/credits/add")
        .header("idempotency-key", "rotate-1")
        .json(&json!({"amount": 1}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rotating_the_encryption_key_keeps_every_secret_and_every_seal() {
    const NEW_KEY: &str = "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=";
    let app = crate::helpers::spawn_app().await;
    app.seed_catalog().await;
    let team = app
        .team(crate::helpers::TeamSpec::new("team_rot", "5"))
        .await;
    let (status, hook) = app
        .post_json(
            "/api/organizations/org_acme/webhook",
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(status, 200, "{hook}");
    let idempotent = add_one_credit_once(&app).await;
    assert_eq!(idempotent.status(), 200);
    let answer: Value = idempotent.json().await.unwrap();
    let old_seals = sealed_report(&app).await;
    assert!(old_seals.seals > 0, "{old_seals:?}");
    let database_url = app.database_url.clone();
    app.stop().await;

    let decode = |raw| api::config::decode_encryption_key(raw).unwrap();
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let rotate = || {
        api::maintenance::rotate_encryption_key(
            &pool,
            decode(crate::helpers::ENCRYPTION_KEY),
            decode(NEW_KEY),
        )
    };
    let done = rotate().await.unwrap();
    assert_eq!(done.virtual_keys.reencrypted, 1);
    assert_eq!(done.webhook_secrets.reencrypted, 1);
    assert_eq!(done.idempotent_answers.reencrypted, 1);
    // Running it again (it stopped half way, say) changes nothing and fails nothing.
    let again = rotate().await.unwrap();
    assert_eq!(again.virtual_keys.reencrypted, 0);
    assert_eq!(again.virtual_keys.already_new, 1);

    let app = crate::helpers::spawn_app_with_database(&database_url, |c| {
        c.encryption_key = NEW_KEY.to_owned().into();
    })
    .await;
    // The key reveals as it was; the stored answer replays; the webhook secret decrypts.
    let (status, revealed) = app
        .post_json("/api/teams/team_rot/virtual-key", json!({}))
        .await;
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["virtual_key"], team.key.as_str());
    let replayed = add_one_credit_once(&app).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<Value>().await.unwrap(), answer);
    let (nonce, secret): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("select nonce, secret from organization_webhooks")
            .fetch_one(&pool)
            .await
            .unwrap();
    let vault = app::keys::Vault::new(decode(NEW_KEY));
    let plain = vault.decrypt(&nonce, &secret, b"webhook:org_acme").unwrap();
    assert_eq!(plain, hook["secret"].as_str().unwrap().as_bytes());

    // Seals made before verify with the old key beside the new one, and only so.
    let new_seal = api::config::seal_key_of(&decode(NEW_KEY));
    let old_seal = api::config::seal_key_of(&decode(crate::helpers::ENCRYPTION_KEY));
    let both = projections::seals::verify_chain(&pool, &[new_seal, old_seal])
        .await
        .unwrap();
    assert!(both.is_intact(), "{both:?}");
    let new_only = projections::seals::verify_chain(&pool, &[new_seal])
        .await
        .unwrap();
    assert!(!new_only.broken_seals.is_empty(), "{new_only:?}");
}
