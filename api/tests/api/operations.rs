//! What operators script and scrape: `/metrics` after a workload, and the admin CLI against a
//! running service.

use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{MASTER_KEY, TestApp, sample, spawn_app};

#[tokio::test]
async fn metrics_show_requests_commands_lag_usage_and_pool() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_m", "team_alias": "M",
                   "model_groups": ["gpt"], "credits": 10}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app
        .post_json("/api/teams/team_nobody/credits/add", json!({"amount": 1}))
        .await;
    assert_eq!(status, 404);
    let records: Vec<Value> = (0..5)
        .map(|i| {
            json!({"request_id": format!("m-{i}"), "team_id": "team_m", "model": "gpt-4o",
                         "provider_cost": "0.01", "prompt_tokens": 1, "completion_tokens": 1})
        })
        .collect();
    let (status, body) = app
        .post_json("/api/usage/records", json!({"records": records}))
        .await;
    assert_eq!(status, 200, "{body}");
    app.get_until(
        "/api/teams/team_m/usage",
        Duration::from_secs(10),
        "usage projected",
        |u| u["request_count"] == 5,
    )
    .await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let created = [
        ("method", "POST"),
        ("route", "/api/teams/create"),
        ("status", "201"),
    ];
    assert!(sample(&text, "saas_http_requests_total", &created).unwrap() >= 1.0);
    // Routes are templates, never raw paths with ids.
    assert!(
        sample(
            &text,
            "saas_http_request_duration_seconds_count",
            &[("route", "/api/teams/{id}/usage")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(!text.contains("team_nobody"), "a raw path became a label");
    assert!(
        sample(
            &text,
            "saas_commands_total",
            &[("command", "Team.Create"), ("outcome", "ok")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &text,
            "saas_commands_total",
            &[("command", "Team.AddCredits"), ("outcome", "rejected")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(sample(&text, "saas_usage_records_total", &[("source", "api")]).unwrap() >= 5.0);
    assert_eq!(
        sample(&text, "saas_consumer_lag_events", &[("consumer", "usage")]),
        Some(0.0)
    );
    assert!(sample(&text, "saas_litellm_sync_teams", &[("status", "pending")]).is_some());
    let idle = sample(&text, "saas_db_pool_connections", &[("state", "idle")]).unwrap();
    let in_use = sample(&text, "saas_db_pool_connections", &[("state", "in_use")]).unwrap();
    assert!(idle + in_use >= 1.0 && in_use >= 0.0);
    // No secret in the exposition.
    assert!(!text.contains(MASTER_KEY));
}

/// Runs `saas-api admin ARGS` against the app (off the test's runtime thread, which serves it).
async fn cli(app: &TestApp, key: &str, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_saas-api"));
    command
        .arg("admin")
        .args(args)
        .env_clear()
        .env("SAAS_URL", &app.address)
        .env("SAAS_ADMIN_KEY", key);
    tokio::task::spawn_blocking(move || command.output().expect("the binary runs"))
        .await
        .unwrap()
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the CLI prints JSON")
}

#[tokio::test]
async fn the_admin_cli_scripts_the_service() {
    let app = spawn_app().await;
    let org = json_of(
        &cli(
            &app,
            MASTER_KEY,
            &["orgs", "create", "--name", "Acme CLI", "--id", "org_cli"],
        )
        .await,
    );
    assert_eq!(org["organization_id"], "org_cli");
    json_of(
        &cli(
            &app,
            MASTER_KEY,
            &["groups", "create", "gpt", "--models", "gpt-4o,gpt-4o-mini"],
        )
        .await,
    );
    let team = json_of(
        &cli(
            &app,
            MASTER_KEY,
            &[
                "teams",
                "create",
                "--org",
                "org_cli",
                "--alias",
                "CLI team",
                "--id",
                "team_cli",
                "--groups",
                "gpt",
                "--credits",
                "10.25",
                "--mode",
                "soft",
            ],
        )
        .await,
    );
    assert!(team["virtual_key"].as_str().unwrap().starts_with("sk-"));
    json_of(
        &cli(
            &app,
            MASTER_KEY,
            &[
                "teams",
                "add-credits",
                "team_cli",
                "4.75",
                "--reason",
                "top-up",
            ],
        )
        .await,
    );
    let position = sqlx::query_scalar::<_, i64>("select max(global_position) from events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_, shown) = app.get_json("/api/teams/team_cli", Some(position)).await;
    assert_eq!(shown["credits"].to_string(), "15");
    assert_eq!(shown["budget_mode"], "soft");
    let usage = json_of(&cli(&app, MASTER_KEY, &["usage", "team_cli"]).await);
    assert_eq!(usage["team_id"], "team_cli");
    assert_eq!(usage["request_count"], 0);
    let listed = json_of(&cli(&app, MASTER_KEY, &["teams", "list", "--org", "org_cli"]).await);
    assert_eq!(listed["teams"][0]["team_id"], "team_cli", "{listed}");

    // Errors: the service's message on stderr, exit status 1, nothing printed as a result.
    let wrong_key = cli(&app, "not-the-admin-key-at-all", &["orgs", "list"]).await;
    assert_eq!(wrong_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_key.stderr).contains("401"));
    assert!(wrong_key.stdout.is_empty());
    let unknown = cli(
        &app,
        MASTER_KEY,
        &["teams", "add-credits", "team_none", "1"],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));
    let nonsense = cli(
        &app,
        MASTER_KEY,
        &["teams", "add-credits", "team_cli", "ten"],
    )
    .await;
    assert_eq!(nonsense.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nonsense.stderr).contains("decimal"));
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_saas-api"))
        .args(["admin", "--url", "http://127.0.0.1:9", "orgs", "list"])
        .env_clear()
        .env("SAAS_ADMIN_KEY", MASTER_KEY)
        .output()
        .unwrap(); // nothing of ours serves port 9: blocking here is fine
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach"));
}

/// Runs the binary with only `vars` in its environment (off the runtime thread serving the app).
async fn saas_api(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_saas-api"));
    command.args(args).env_clear();
    for (name, value) in vars {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("the binary runs"))
        .await
        .unwrap()
}

/// As the original project's: `replay` and `verify` need the database and nothing else, and a
/// command that cannot run says why in one line (no backtrace, no cause chain over lines).
#[tokio::test]
async fn replay_and_verify_need_only_the_database_and_failures_are_one_line() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let only_database = [("DATABASE_URL", app.database_url.as_str())];
    for args in [&["replay"][..], &["verify"][..]] {
        let output = saas_api(args, &only_database).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let one_line = |output: &Output, mentions: &str| {
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line, got: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(mentions),
            "{stderr}"
        );
    };
    // Seals need the key they were made with.
    one_line(
        &saas_api(&["verify", "--chain"], &only_database).await,
        "ENCRYPTION_KEY",
    );
    one_line(
        &saas_api(
            &["verify"],
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:9/nothing")],
        )
        .await,
        "database",
    );
    one_line(
        &saas_api(&["serve"], &[("DATABASE_URL", app.database_url.as_str())]).await,
        "MASTER_KEY",
    );
}

/// The metric names in a deploy file (`saas_…` tokens), histogram suffixes kept as written.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("saas_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The Grafana dashboard and Prometheus alerts in `deploy/` name only series a fresh service
/// serves on its first scrape (counters an alert reads start at zero), so neither goes blank.
#[tokio::test]
async fn the_deploy_dashboards_and_alerts_name_only_metrics_that_exist() {
    let dashboard = include_str!("../../../deploy/grafana/saas-litellm.json");
    let alerts = include_str!("../../../deploy/prometheus/alerts.yml");
    let parsed: Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
    let panels = parsed["panels"]
        .as_array()
        .expect("the dashboard has panels");
    assert!(panels.iter().all(|p| p["targets"][0]["expr"].is_string()));
    let app = spawn_app().await;
    // One command and one request, so the command and HTTP series exist.
    let (status, _) = app
        .post_json(
            "/api/organizations/create",
            json!({"organization_id": "org_m", "name": "Metrics"}),
        )
        .await;
    assert_eq!(status, 201);
    let text = app.scrape().await;
    let served: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let named: Vec<String> = metric_names(dashboard)
        .into_iter()
        .chain(metric_names(alerts))
        .collect();
    assert!(named.len() >= 8, "{named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !served.contains(name.as_str()))
        .collect();
    assert!(missing.is_empty(), "not on /metrics: {missing:?}\n{text}");

    // The budget gauge the alerts read: a team past 80 % of its credits, none past 100 %.
    app.seed_catalog().await;
    app.team(crate::helpers::TeamSpec::new("team_m", "10"))
        .await;
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [{"request_id": "m-1", "team_id": "team_m", "model": "gpt-4o",
                                "provider_cost": "8.5", "prompt_tokens": 1, "completion_tokens": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.get_until(
        "/api/teams/team_m",
        Duration::from_secs(10),
        "the usage never reached the team's budget",
        |team| team["spend"] == json!(8.5),
    )
    .await;
    let text = app.scrape().await;
    assert_eq!(
        sample(&text, "saas_teams_budget_used", &[("level", "80")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "saas_teams_budget_used", &[("level", "100")]),
        Some(0.0)
    );
}
