//! Faults: LiteLLM down, failing or answering garbage on the request path; PostgreSQL dropping
//! every connection mid-load; the connection pool exhausted. The service answers with clear
//! JSON errors (503 with Retry-After where a retry will help), loses nothing, and recovers by
//! itself.

use std::time::Duration;

use futures::future::join_all;
use litellm::double::Fault;
use serde_json::{Value, json};

use crate::helpers::{LITELLM_MASTER, double, wait_in_sync};
use crate::helpers::{TestApp, spawn_app_with};

async fn budget(app: &TestApp, team: &str) -> Value {
    app.get_until(
        &format!("/api/teams/{team}/budget"),
        Duration::from_secs(10),
        "the hold is released",
        |b| b["held"] == json!(0),
    )
    .await
}

#[tokio::test]
async fn llm_calls_during_litellm_faults_get_clear_errors_and_cost_nothing() {
    let double = double().await;
    let url = double.base_url();
    let app = spawn_app_with(move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
        c.spend_ingest.poll_every = Duration::ZERO;
    })
    .await;
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_f", "team_alias": "F",
                   "model_groups": ["gpt"], "credits": "10"}),
        )
        .await;
    assert_eq!(status, 201);
    let key = body["virtual_key"].as_str().unwrap().to_owned();
    wait_in_sync(&app, "team_f", body["position"].as_i64().unwrap()).await;
    let chat = || {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o", "max_tokens": 20,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let events_before = app.events_of("Usage").await;

    for (fault, statuses) in [
        (Fault::ServerError, [500, 502]),
        (Fault::Garbage, [502, 502]),
        (Fault::Unauthorized, [401, 502]),
    ] {
        double.set_fault(fault.clone());
        let response = chat().await.unwrap();
        let status = response.status().as_u16();
        assert!(statuses.contains(&status), "{fault:?}: {status}");
        let body: Value = response.json().await.expect("a JSON error");
        assert!(body["error"]["message"].is_string(), "{fault:?}: {body}");
        assert!(!body.to_string().contains(LITELLM_MASTER));
        assert!(!body.to_string().contains(&key));
    }
    // LiteLLM down altogether: the service says so and asks for a retry.
    double.set_fault(Fault::None);
    double.stop();
    let response = chat().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");

    // Nothing was charged and nothing is left held.
    let budget = budget(&app, "team_f").await;
    assert_eq!(budget["spend"], json!(0), "{budget}");
    assert_eq!(app.events_of("Usage").await, events_before);

    // Back up: calls work again without a restart.
    double.resume().await.unwrap();
    let response = chat().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn dropped_database_connections_lose_no_acknowledged_command() {
    let app = spawn_app_with(|_| {}).await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_d", "team_alias": "D", "credits": "1"}),
        )
        .await;
    assert_eq!(status, 201);
    let database = app.database_url.rsplit('/').next().unwrap().to_owned();
    let admin = sqlx::PgPool::connect(&testkit::database_url("postgres").unwrap())
        .await
        .unwrap();

    // Waves of concurrent credit additions while every connection to the database is cut,
    // as a PostgreSQL restart would.
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for wave in 0..5 {
        let calls = (0..16).map(|i| {
            let reason = format!("wave{wave}-{i}");
            let request = app
                .admin_post("/api/teams/team_d/credits/add")
                .json(&json!({"amount": "1.25", "reason": reason}))
                .send();
            async move { (reason, request.await) }
        });
        let cut = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            sqlx::query(
                "select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = $1 and pid <> pg_backend_pid()",
            )
            .bind(&database)
            .execute(&admin)
            .await
            .unwrap();
        };
        let (answers, ()) = tokio::join!(join_all(calls), cut);
        for (reason, answer) in answers {
            let response = answer.expect("the service answers");
            match response.status().as_u16() {
                200 => acknowledged.push(reason),
                503 => {
                    assert!(response.headers().contains_key("retry-after"));
                    refused += 1;
                }
                other => panic!("{reason}: {other} {}", response.text().await.unwrap()),
            }
        }
    }
    assert!(!acknowledged.is_empty());
    // Every acknowledged addition is in the log exactly once, and the read model (whose
    // consumer lost its connections too) catches up to exactly the log.
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "select payload->'CreditsAdded'->>'reason', count(*) from events
          where event_type = 'CreditsAdded' group by 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for reason in &acknowledged {
        let found = counts.iter().find(|(r, _)| r == reason).map_or(0, |c| c.1);
        assert_eq!(found, 1, "{reason}");
    }
    let in_log = counts.iter().map(|c| c.1).sum::<i64>();
    let position: i64 = sqlx::query_scalar("select max(global_position) from events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, team) = app.get_json("/api/teams/team_d", Some(position)).await;
    assert_eq!(status, 200, "{team}");
    let expected = rust_decimal::Decimal::ONE
        + rust_decimal::Decimal::new(125, 2) * rust_decimal::Decimal::from(in_log);
    assert_eq!(
        team["credits"].to_string(),
        expected.normalize().to_string()
    );
    tracing::info!(
        acknowledged = acknowledged.len(),
        refused,
        "connections cut"
    );
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_with_retry_after_and_recovers() {
    let app = spawn_app_with(|c| c.db_pool_size = 2).await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_p", "team_alias": "P", "credits": "1"}),
        )
        .await;
    assert_eq!(status, 201);
    let before = app.event_count().await;

    // Another client holds the event log: commands wait in the database holding their
    // connections, and the pool runs dry.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("lock table events in exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let calls = (0..6).map(|i| {
        app.admin_post("/api/teams/team_p/credits/add")
            .json(&json!({"amount": "1", "reason": format!("pool-{i}")}))
            .send()
    });
    let release = async {
        tokio::time::sleep(Duration::from_secs(7)).await;
        blocker.rollback().await.unwrap();
    };
    let (answers, ()) = tokio::join!(join_all(calls), release);
    let mut done = 0;
    let mut unavailable = 0;
    for answer in answers {
        let response = answer.unwrap();
        match response.status().as_u16() {
            200 => done += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
                unavailable += 1;
            }
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
    }
    assert!(unavailable > 0, "the pool never ran dry");
    assert_eq!(done + unavailable, 6);
    // What was refused wrote nothing; what was answered is there.
    assert_eq!(app.event_count().await, before + done);
    let (status, _) = app
        .post_json("/api/teams/team_p/credits/add", json!({"amount": "1"}))
        .await;
    assert_eq!(status, 200, "recovered");
}
