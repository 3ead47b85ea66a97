//! The usage ledger and its reports: exactly-once recording, exact sums across teams, models
//! and days, thresholds that fire once even with two instances, and clear errors.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TeamSpec, TestApp, assert_error, dec, spawn_app, spawn_app_with_database};

async fn create_team(
    app: &TestApp,
    team_id: &str,
    organization_id: &str,
    credits: &str,
    markup: &str,
) {
    let spec = TeamSpec::new(team_id, credits)
        .set("organization_id", organization_id)
        .set("team_alias", format!("{team_id} alias"))
        .set("markup_percent", markup);
    app.team(spec).await;
}

fn record(request_id: &str, team_id: &str, model: &str, cost: &str, at: &str) -> Value {
    json!({"request_id": request_id, "team_id": team_id, "model": model, "prompt_tokens": 100,
           "completion_tokens": 40, "cached_tokens": 10, "provider_cost": cost, "occurred_at": at,
           "latency_ms": 250})
}

/// Posts records; returns (status, body).
async fn post_records(app: &TestApp, records: Vec<Value>) -> (u16, Value) {
    app.post_json("/api/usage/records", json!({"records": records}))
        .await
}

/// The newest position in the log, to read after.
async fn head(app: &TestApp) -> i64 {
    sqlx::query_scalar("select coalesce(max(global_position), 0) from events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The team's budget once it lists `alerts` threshold alerts (they are written by the budget
/// projector after the usage that crossed them, so they show a moment later).
async fn budget_with_alerts(app: &TestApp, team_id: &str, alerts: usize) -> Value {
    app.get_until(
        &format!("/api/teams/{team_id}/budget"),
        std::time::Duration::from_secs(10),
        &format!("never {alerts} alerts"),
        |budget| budget["alerts"].as_array().map(Vec::len) == Some(alerts),
    )
    .await
}

async fn get_ok(app: &TestApp, path: &str) -> Value {
    let position = head(app).await;
    let (status, body) = app.get_json(path, Some(position)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn usage_recorded_twice_counts_once() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_a", "org_acme", "100", "20").await;

    let first = vec![
        record("req-1", "team_a", "gpt-4o", "1.5", "2026-11-20T10:00:00Z"),
        record(
            "req-2",
            "team_a",
            "gpt-4o-mini",
            "0.25",
            "2026-11-20T11:00:00Z",
        ),
        record(
            "req-2",
            "team_a",
            "gpt-4o-mini",
            "0.25",
            "2026-11-20T11:00:00Z",
        ),
    ];
    let (status, body) = post_records(&app, first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], 2);
    assert_eq!(body["duplicates"], 1, "the repeat inside the batch");

    let (status, body) = post_records(
        &app,
        vec![record(
            "req-1",
            "team_a",
            "gpt-4o",
            "1.5",
            "2026-11-20T10:00:00Z",
        )],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], 0);
    assert_eq!(body["duplicates"], 1);
    assert_eq!(app.events_of("Usage").await, 2);

    let usage = get_ok(&app, "/api/teams/team_a/usage").await;
    assert_eq!(usage["team_id"], "team_a");
    assert_eq!(usage["request_count"], 2);
    assert_eq!(
        dec(&usage["provider_cost"]),
        Decimal::from_str("1.75").unwrap()
    );
    assert_eq!(
        dec(&usage["total_spend"]),
        Decimal::from_str("2.1").unwrap(),
        "20% markup"
    );
    assert_eq!(
        dec(&usage["remaining_budget"]),
        Decimal::from_str("97.9").unwrap()
    );
    assert_eq!(usage["models_used"]["gpt-4o"]["requests"], 1);
    assert_eq!(
        dec(&usage["models_used"]["gpt-4o"]["cost"]),
        Decimal::from_str("1.8").unwrap()
    );
    assert_eq!(usage["models_used"]["gpt-4o-mini"]["tokens"], 140);

    let team = get_ok(&app, "/api/teams/team_a").await;
    assert_eq!(dec(&team["spend"]), Decimal::from_str("2.1").unwrap());
    let budget = get_ok(&app, "/api/teams/team_a/budget").await;
    assert_eq!(budget["request_count"], 2);
    assert_eq!(
        dec(&budget["percent_used"]),
        Decimal::from_str("2.1").unwrap()
    );
    assert_eq!(budget["last_usage_at"], "2026-11-20T11:00:00Z");
}

/// A record as sent: team, time, model, provider cost, price.
type Expected = (String, String, &'static str, Decimal, Decimal);

#[tokio::test]
async fn reports_add_up_exactly_across_teams_models_and_days() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/organizations/create",
            json!({"organization_id": "org_other", "name": "Other"}),
        )
        .await;
    assert_eq!(status, 201);
    create_team(&app, "team_a", "org_acme", "1000", "0").await;
    create_team(&app, "team_b", "org_acme", "1000", "12.5").await;
    create_team(&app, "team_c", "org_other", "1000", "0").await;

    // Costs with many decimals that floats would not add exactly.
    let teams = ["team_a", "team_b", "team_c"];
    let models = ["gpt-4o", "gpt-4o-mini"];
    let mut records = Vec::new();
    let mut expected: Vec<Expected> = Vec::new();
    for i in 0..60u32 {
        let team = teams[(i % 3) as usize];
        let model = models[(i % 2) as usize];
        let day = 1 + (i % 4);
        let hour = (i * 5) % 24;
        let at = format!("2026-11-0{day}T{hour:02}:17:00Z");
        let cost =
            Decimal::from_str(&format!("0.{:012}", 10_000_001u64 * u64::from(i + 1))).unwrap();
        let markup = if team == "team_b" {
            Decimal::from_str("1.125").unwrap()
        } else {
            Decimal::ONE
        };
        records.push(record(
            &format!("r-{i}"),
            team,
            model,
            &cost.to_string(),
            &at,
        ));
        // Prices are kept to 12 decimal places, rounded half away from zero.
        let price = (cost * markup)
            .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        expected.push((team.to_owned(), at, model, cost, price));
    }
    let (status, body) = post_records(&app, records).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], 60);

    let sum = |filter: &dyn Fn(&Expected) -> bool| -> (Decimal, usize) {
        let rows: Vec<_> = expected.iter().filter(|r| filter(r)).collect();
        (rows.iter().map(|r| r.4).sum(), rows.len())
    };

    // Per team and model.
    let mut org_total = Decimal::ZERO;
    for team in ["team_a", "team_b"] {
        let usage = get_ok(&app, &format!("/api/teams/{team}/usage")).await;
        let (spend, count) = sum(&|r| r.0 == team);
        assert_eq!(dec(&usage["total_spend"]), spend, "{team}");
        assert_eq!(usage["request_count"], count);
        for model in models {
            let (spend, count) = sum(&|r| r.0 == team && r.2 == model);
            assert_eq!(
                dec(&usage["models_used"][model]["cost"]),
                spend,
                "{team} {model}"
            );
            assert_eq!(usage["models_used"][model]["requests"], count);
        }
        org_total += spend;
    }

    // Per organization, and its teams.
    let org = get_ok(&app, "/api/organizations/org_acme/usage").await;
    assert_eq!(dec(&org["total_spend"]), org_total);
    assert_eq!(org["teams"].as_array().unwrap().len(), 2);
    let lines: Decimal = org["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["total_spend"]))
        .sum();
    assert_eq!(lines, org_total);

    // All teams, sorted by spend.
    let all = get_ok(&app, "/api/usage/teams?sort=spend&order=desc").await;
    let (everything, count) = sum(&|_| true);
    assert_eq!(dec(&all["totals"]["total_spend"]), everything);
    assert_eq!(all["totals"]["request_count"], count);
    let spends: Vec<Decimal> = all["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["total_spend"]))
        .collect();
    assert_eq!(spends.len(), 3);
    assert!(
        spends.windows(2).all(|w| w[0] >= w[1]),
        "sorted by spend: {spends:?}"
    );

    // Daily series over the four days: each day exact, and the days add up.
    let daily = get_ok(
        &app,
        "/api/teams/team_b/usage/daily?from=2026-11-01&to=2026-11-05",
    )
    .await;
    let days = daily["days"].as_array().unwrap();
    assert_eq!(days.len(), 5, "every day listed, usage or not");
    for day in days {
        let date = day["date"].as_str().unwrap().to_owned();
        let (spend, count) = sum(&|r| r.0 == "team_b" && r.1.starts_with(&date));
        assert_eq!(dec(&day["spend"]), spend, "{date}");
        assert_eq!(day["requests"], count);
    }
    assert_eq!(days[4]["requests"], 0);
    let org_daily = get_ok(
        &app,
        "/api/organizations/org_acme/usage/daily?from=2026-11-01&to=2026-11-04",
    )
    .await;
    let org_days: Decimal = org_daily["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| dec(&d["spend"]))
        .sum();
    assert_eq!(org_days, org_total);

    // A period with partial days at both ends.
    let (from, to) = ("2026-11-01T12:00:00Z", "2026-11-03T09:00:00Z");
    let usage = get_ok(
        &app,
        &format!("/api/teams/team_a/usage?from={from}&to={to}"),
    )
    .await;
    let (spend, count) = sum(&|r| r.0 == "team_a" && r.1.as_str() >= from && r.1.as_str() < to);
    assert!(count > 0);
    assert_eq!(dec(&usage["total_spend"]), spend);
    assert_eq!(usage["request_count"], count);

    // CSV export of a period: one line per record, header first.
    let response = app
        .admin_get("/api/usage/records.csv?organization_id=org_acme&from=2026-11-02&to=2026-11-02")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("request_id,occurred_at,team_id")
    );
    let rows: Vec<&str> = lines.collect();
    let (spend, count) = sum(&|r| r.0 != "team_c" && r.1.starts_with("2026-11-02"));
    assert_eq!(rows.len(), count);
    let csv_spend: Decimal = rows
        .iter()
        .map(|line| Decimal::from_str(line.split(',').nth(13).unwrap()).unwrap())
        .sum();
    assert_eq!(csv_spend, spend);
}

#[tokio::test]
async fn thresholds_fire_once_per_credit_level_even_with_two_instances() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_t", "org_acme", "10", "0").await;
    let other = spawn_app_with_database(&app.database_url, |_| {}).await;

    // 40 requests of 0.5 (200% of the credits), sent at once to both instances, some twice.
    let mut sends = Vec::new();
    for i in 0..40 {
        let target = if i % 2 == 0 { &app } else { &other };
        let body = vec![record(
            &format!("t-{i}"),
            "team_t",
            "gpt-4o",
            "0.5",
            "2026-11-20T10:00:00Z",
        )];
        sends.push(post_records(target, body.clone()));
        if i % 5 == 0 {
            sends.push(post_records(if i % 2 == 0 { &other } else { &app }, body));
        }
    }
    for (status, body) in futures::future::join_all(sends).await {
        assert_eq!(status, 200, "{body}");
    }
    let budget = app
        .get_until(
            "/api/teams/team_t/budget",
            std::time::Duration::from_secs(10),
            "every request and both alerts",
            |b| b["request_count"] == 40 && b["alerts"].as_array().map(Vec::len) == Some(2),
        )
        .await;
    assert_eq!(dec(&budget["spend"]), Decimal::from(20));
    assert_eq!(budget["request_count"], 40);
    let thresholds: Vec<i64> = budget["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["threshold_percent"].as_i64().unwrap())
        .collect();
    assert_eq!(thresholds, vec![80, 100]);
    assert_eq!(app.events_of("BudgetAlert").await, 2);
    let eighty = &budget["alerts"][0];
    assert_eq!(eighty["credit_level"], 0);
    assert!(
        eighty["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("t-"))
    );

    // Adding credits re-arms: 20 of 110 is 18%, nothing yet; 88 of 110 is 80%.
    let (status, body) = app
        .post_json("/api/teams/team_t/credits/add", json!({"amount": 100}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get_ok(&app, "/api/teams/team_t/budget").await["alerts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = post_records(
        &other,
        vec![record(
            "t-big",
            "team_t",
            "gpt-4o",
            "68",
            "2026-11-21T10:00:00Z",
        )],
    )
    .await;
    assert_eq!(status, 200);
    let budget = budget_with_alerts(&app, "team_t", 3).await;
    let alerts = budget["alerts"].as_array().unwrap();
    assert_eq!(alerts[2]["threshold_percent"], 80);
    assert_eq!(alerts[2]["credit_level"], 1);
    assert_eq!(app.events_of("BudgetAlert").await, 3);
    other.stop().await;
}

#[tokio::test]
async fn empty_periods_are_zeros_and_bad_periods_are_refused() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_e", "org_acme", "50", "0").await;
    let (status, body) = post_records(
        &app,
        vec![record(
            "e-1",
            "team_e",
            "gpt-4o",
            "1",
            "2026-11-20T10:00:00Z",
        )],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let usage = get_ok(
        &app,
        "/api/teams/team_e/usage?from=2020-01-01&to=2020-01-31",
    )
    .await;
    assert_eq!(usage["request_count"], 0);
    assert_eq!(dec(&usage["total_spend"]), Decimal::ZERO);
    assert_eq!(usage["models_used"], json!({}));
    assert_eq!(
        dec(&usage["remaining_budget"]),
        Decimal::from(49),
        "the balance is not period-bound"
    );
    let org = get_ok(
        &app,
        "/api/organizations/org_acme/usage?from=2020-01-01&to=2020-01-02",
    )
    .await;
    assert_eq!(dec(&org["total_spend"]), Decimal::ZERO);
    assert_eq!(org["teams"][0]["request_count"], 0);
    let daily = get_ok(
        &app,
        "/api/teams/team_e/usage/daily?from=2020-01-01&to=2020-01-03",
    )
    .await;
    assert_eq!(daily["days"].as_array().unwrap().len(), 3);
    assert!(
        daily["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["requests"] == 0)
    );

    for (path, code) in [
        ("/api/teams/team_e/usage?from=yesterday", "invalid_period"),
        (
            "/api/teams/team_e/usage?from=2026-11-02&to=2026-10-01",
            "invalid_period",
        ),
        (
            "/api/teams/team_e/usage?to=2026-11-02T10:00:00",
            "invalid_period",
        ),
        (
            "/api/teams/team_e/usage/daily?from=2020-01-01&to=2026-01-01",
            "invalid_period",
        ),
        (
            "/api/organizations/org_acme/usage?from=13/11/2026",
            "invalid_period",
        ),
        ("/api/usage/teams?sort=cost", "invalid_query"),
        ("/api/usage/teams?limit=0", "invalid_query"),
        ("/api/usage/records.csv?from=soon", "invalid_period"),
    ] {
        let response = app.admin_get(path).send().await.unwrap();
        assert_error(response, 400, code).await;
    }
    let response = app.admin_get("/api/teams/nope/usage").send().await.unwrap();
    assert_error(response, 404, "team_not_found").await;
    let response = app
        .admin_get("/api/organizations/nope/usage")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "organization_not_found").await;
}

#[tokio::test]
async fn a_batch_with_a_bad_record_records_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_v", "org_acme", "50", "0").await;
    let before = app.event_count().await;
    for (bad, needle) in [
        (
            record("v-2", "no_such_team", "gpt-4o", "1", "2026-11-20T10:00:00Z"),
            "team not found",
        ),
        (
            record("v-2", "team_v", "gpt-4o", "-1", "2026-11-20T10:00:00Z"),
            "provider_cost",
        ),
        (
            record("v-2", "team_v", "gpt-4o", "1", "2999-01-01T00:00:00Z"),
            "occurred_at",
        ),
        (
            record("", "team_v", "gpt-4o", "1", "2026-11-20T10:00:00Z"),
            "request_id",
        ),
    ] {
        let good = record("v-1", "team_v", "gpt-4o", "1", "2026-11-20T10:00:00Z");
        let (status, body) = post_records(&app, vec![good, bad]).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_usage");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle) && message.contains("records[1]"),
            "{message}"
        );
    }
    let (status, body) = app
        .post_json("/api/usage/records", json!({"records": [{"request_id": "x", "team_id": "team_v", "model": "m", "provider_cost": "abc"}]}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_usage");
    let (status, _) = post_records(&app, vec![]).await;
    assert_eq!(status, 422);
    assert_eq!(app.event_count().await, before, "nothing was written");
}

#[tokio::test]
async fn the_csv_export_neutralises_text_a_spreadsheet_would_run_as_a_formula() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_csv", "org_acme", "100", "0").await;
    let mut hostile = record(
        "=HYPERLINK(\"http://evil.example\")",
        "team_csv",
        "gpt-4o",
        "0.01",
        "2026-11-02T10:00:00Z",
    );
    hostile["job_id"] = json!("@SUM(A1:A9)");
    hostile["provider_model"] = json!("+cmd|' /C calc'!A0");
    let mut tabbed = record("-2+3", "team_csv", "gpt-4o", "0.01", "2026-11-02T11:00:00Z");
    tabbed["provider_model"] = json!("-1+1");
    let (status, body) = post_records(&app, vec![hostile, tabbed]).await;
    assert_eq!(status, 200, "{body}");
    let text = app
        .admin_get("/api/usage/records.csv?organization_id=org_acme&from=2026-11-02&to=2026-11-02")
        .header("x-wait-for-position", body["position"].to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut cells = 0;
    for line in text.lines().skip(1) {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            cells += 1;
            assert!(
                // Every number the export writes is non-negative: a leading '-' is text.
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would evaluate: {cell:?} in {line:?}"
            );
        }
    }
    assert!(cells > 0, "{text}");
    // What was sent is still there, behind the quote that makes it text.
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert!(text.contains("'@SUM(A1:A9)"), "{text}");
    assert!(text.contains("'-1+1") && text.contains("'-2+3"), "{text}");
}

#[tokio::test]
async fn two_teams_calls_with_the_same_provider_id_are_both_billed() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_one", "org_acme", "100", "0").await;
    create_team(&app, "team_two", "org_acme", "100", "0").await;
    // A provider (a self-hosted model server, say) that answers every call with one id.
    let fixed = |team, cost, at| record("chatcmpl-fixed", team, "gpt-4o", cost, at);
    let (status, body) = post_records(
        &app,
        vec![
            fixed("team_one", "1.25", "2026-11-02T10:00:00Z"),
            fixed("team_two", "2.50", "2026-11-02T10:00:01Z"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], 2, "{body}");
    let position = body["position"].as_i64().unwrap();
    for (team, spend) in [("team_one", "1.25"), ("team_two", "2.50")] {
        let (_, usage) = app
            .get_json(
                &format!("/api/teams/{team}/usage?from=2026-11-02&to=2026-11-02"),
                Some(position),
            )
            .await;
        assert_eq!(
            dec(&usage["total_spend"]),
            dec(&json!(spend)),
            "{team}: {usage}"
        );
    }
    // The same team reporting the same id again is still one call.
    let (_, again) = post_records(
        &app,
        vec![fixed("team_two", "2.50", "2026-11-02T10:00:01Z")],
    )
    .await;
    assert_eq!(again["recorded"], 0, "{again}");
    assert_eq!(again["duplicates"], 1, "{again}");
}

#[tokio::test]
async fn a_call_recorded_before_the_upgrade_under_its_request_id_alone_is_not_billed_again() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    create_team(&app, "team_old", "org_acme", "100", "0").await;
    create_team(&app, "team_new", "org_acme", "100", "0").await;
    // What a release before team-scoped usage streams wrote, and what its migration noted.
    let v1 = json!({"UsageRecorded": {"request_id": "chatcmpl-legacy", "team_id": "team_old",
        "organization_id": "org_acme", "key_fingerprint": null, "model": "gpt-4o",
        "provider_model": null, "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0,
        "provider_cost": "0.5", "markup_percent": "0", "price": "0.5", "status": "success",
        "latency_ms": 80, "occurred_at": "2026-11-02T09:00:00Z", "job_id": null,
        "source": "spend_logs"}});
    app.insert_raw_event("Usage", "chatcmpl-legacy", v1).await;
    sqlx::query("insert into usage_identity_legacy values (true)")
        .execute(&app.pool)
        .await
        .unwrap();
    // LiteLLM's spend log re-read after the upgrade: the same team's call is a duplicate...
    let (status, body) = post_records(
        &app,
        vec![
            record(
                "chatcmpl-legacy",
                "team_old",
                "gpt-4o",
                "0.5",
                "2026-11-02T09:00:00Z",
            ),
            record(
                "chatcmpl-legacy",
                "team_new",
                "gpt-4o",
                "0.75",
                "2026-11-02T09:00:00Z",
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // ...and another team's call with the same id is its own.
    assert_eq!(body["duplicates"], 1, "{body}");
    assert_eq!(body["recorded"], 1, "{body}");
}
