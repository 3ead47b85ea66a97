//! Hostile input: malformed, oversized, deeply nested and non-UTF-8 bodies, numbers no one
//! means, injection attempts in text fields and odd ids. Each gets a JSON 4xx and changes
//! nothing; text that is valid is stored exactly as typed and harms nothing.

use serde_json::{Value, json};

use crate::helpers::{MASTER_KEY, TestApp, assert_error, spawn_app};

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-admin-key", MASTER_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_bodies_get_json_errors_and_change_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let nested = format!(
        "{{\"name\": {}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", nested.into_bytes(), 422, "invalid_body"),
        (
            "application/json",
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "application/json",
            b"{\"name\": \"Acme\"".to_vec(),
            400,
            "invalid_json",
        ),
        ("application/json", b"".to_vec(), 400, "invalid_json"),
        (
            "application/json",
            b"[\"Acme\"]".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            b"\"Acme\"".to_vec(),
            422,
            "invalid_body",
        ),
        ("application/json", b"null".to_vec(), 422, "invalid_body"),
        (
            "application/json",
            b"{\"name\": \"A\", \"name\": \"B\"}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            b"{\"name\": \"Acme\", \"is_admin\": true}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            b"{\"name\": 12}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "text/plain",
            b"{\"name\": \"Acme\"}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=Acme".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let response = raw_post(&app, "/api/organizations/create", content_type, body).await;
        assert_eq!(response.status().as_u16(), status, "{content_type} {shown}");
        let error = assert_error(response, status, code).await;
        // Messages describe, they do not echo the input back at length.
        assert!(error.to_string().len() < 1000, "{error}");
    }
    // The service is still up and wrote nothing.
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn money_that_is_negative_too_precise_or_huge_is_refused() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_m", "team_alias": "M", "credits": "10"}),
        )
        .await;
    assert_eq!(status, 201);
    let before = app.event_count().await;
    // Raw JSON text, so numbers reach the service exactly as a hostile client writes them.
    let amounts = [
        "-1",
        "-0.01",
        "0",
        "0.0000001",
        "10.0000005",
        "1e400",
        "99999999999999999999999999999999999999",
        "1000000000.01",
        "\"NaN\"",
        "\"Infinity\"",
        "\"0x10\"",
        "\"\"",
        "\"1,5\"",
        "null",
        "true",
        "[5]",
        "{\"amount\": 5}",
    ];
    for amount in amounts {
        let body = format!("{{\"amount\": {amount}}}");
        let response = raw_post(
            &app,
            "/api/teams/team_m/credits/add",
            "application/json",
            body.into_bytes(),
        )
        .await;
        let status = response.status().as_u16();
        let error: Value = response.json().await.unwrap();
        assert!(
            status == 422 || status == 400,
            "amount {amount} answered {status}: {error}"
        );
        assert!(error["error"]["code"].is_string(), "{error}");
    }
    // Rate limits and markup have their own bounds.
    for (path, body) in [
        (
            "/api/teams/team_m/rate-limits",
            r#"{"rpm_limit": 18446744073709551616}"#,
        ),
        ("/api/teams/team_m/rate-limits", r#"{"rpm_limit": 1.5}"#),
        ("/api/teams/team_m/rate-limits", r#"{"tpm_limit": -1}"#),
        ("/api/teams/team_m/markup", r#"{"markup_percent": -200}"#),
        ("/api/teams/team_m/markup", r#"{"markup_percent": 1e9}"#),
    ] {
        let response = raw_post(&app, path, "application/json", body.as_bytes().to_vec()).await;
        assert!(
            [400, 422].contains(&response.status().as_u16()),
            "{path} {body}: {}",
            response.status()
        );
    }
    assert_eq!(app.event_count().await, before);
    let (_, team) = app.get_json("/api/teams/team_m", None).await;
    assert_eq!(team["credits"].to_string(), "10");
}

#[tokio::test]
async fn injection_attempts_in_text_fields_are_stored_as_text_and_harm_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let hostile = [
        "'; drop table events; --",
        "Robert'); DELETE FROM teams_read;--",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "{{7*7}} ${7*7} %s %n",
        "../../etc/passwd",
        "Ünïcødé ✓ 名前",
    ];
    for (i, text) in hostile.iter().enumerate() {
        let team_id = format!("team_h{i}");
        let (status, body) = app
            .post_json(
                "/api/teams/create",
                json!({"organization_id": "org_acme", "team_id": team_id, "team_alias": text}),
            )
            .await;
        assert_eq!(status, 201, "{text}: {body}");
        let position = body["position"].as_i64().unwrap();
        let (status, team) = app
            .get_json(&format!("/api/teams/{team_id}"), Some(position))
            .await;
        assert_eq!(status, 200);
        assert_eq!(team["team_alias"], *text, "stored exactly as typed");
        // Searching for it finds that team only; a `%` or `'` is text, not syntax.
        let (status, found) = app
            .get_json(&format!("/api/teams?q={}", urlencode(text)), Some(position))
            .await;
        assert_eq!(status, 200, "{found}");
        let ids: Vec<&str> = found["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["team_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [team_id.as_str()], "search for {text}");
    }
    // The tables the injections name are intact and hold everything.
    let (status, teams) = app.get_json("/api/teams?limit=200", None).await;
    assert_eq!(status, 200);
    assert_eq!(teams["teams"].as_array().unwrap().len(), hostile.len());
    assert!(app.event_count().await > hostile.len() as i64);

    // Control characters and oversized text are refused, not stored.
    let before = app.event_count().await;
    for alias in ["a\u{0000}b", "line\nbreak", &"x".repeat(10_000)] {
        let (status, body) = app
            .post_json(
                "/api/teams/create",
                json!({"organization_id": "org_acme", "team_id": "team_bad", "team_alias": alias}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn odd_ids_in_paths_are_not_found_and_never_reach_anything_else() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let ids = [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "..",
        "team_a%00",
        "team_a%0Aevil",
        "%27%20or%20%271%27%3D%271",
        "%3Cscript%3E",
        "%E2%80%AE",
        "%FF%FE",
        &"a".repeat(5000),
    ];
    for id in ids {
        for path in [
            format!("/api/teams/{id}"),
            format!("/api/teams/{id}/usage"),
            format!("/api/organizations/{id}"),
            format!("/api/model-groups/{id}"),
        ] {
            let response = app.admin_get(&path).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(status == 404 || status == 400, "{path}: {status} {body}");
            assert!(body["error"]["code"].is_string(), "{path}: {body}");
        }
        let response = app
            .admin_post(&format!("/api/teams/{id}/credits/add"))
            .json(&json!({"amount": 5}))
            .send()
            .await
            .unwrap();
        assert!([400, 404].contains(&response.status().as_u16()), "{id}");
    }
}

#[tokio::test]
async fn nul_characters_anywhere_are_refused_not_failed() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_n", "team_alias": "N", "credits": "5"}),
        )
        .await;
    assert_eq!(status, 201);
    let key = body["virtual_key"].as_str().unwrap().to_owned();
    let before = app.event_count().await;
    for path in [
        "/api/teams?q=a%00b",
        "/api/teams?organization_id=%00",
        "/api/audit/events?actor=%00",
        "/api/usage/teams?organization_id=%00",
        "/api/budget-alerts?team_id=%00",
    ] {
        let response = app.admin_get(path).send().await.unwrap();
        let status = response.status().as_u16();
        assert!([200, 400, 404].contains(&status), "{path}: {status}");
    }
    for body in [
        json!({"job_type": "a\u{0000}b"}),
        json!({"job_type": "ok", "metadata": {"note": "a\u{0000}b"}}),
        json!({"job_type": "ok", "job_id": "job_\u{0000}"}),
    ] {
        let response = app
            .client
            .post(app.url("/api/jobs/create"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!([400, 422].contains(&status), "{body}: {status}");
    }
    assert_eq!(app.event_count().await, before);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
