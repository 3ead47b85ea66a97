//! The admin panel's sessions over HTTP (the pages themselves are tested in a real browser by
//! scripts/e2e-admin): login, the cookie, CSRF, expiry, logout, the login rate limit, and the
//! endpoints the panel added to the API.

use std::time::Duration;

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{LITELLM_MASTER, double};
use crate::helpers::{
    MASTER_KEY, TestApp, assert_error, spawn_app, spawn_app_with, spawn_app_with_database,
};

/// A browser without redirects or a cookie jar: cookies are carried by hand so each test can
/// see exactly what was set.
struct Browser {
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn get(&mut self, app: &TestApp, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.remember(response.headers());
        response
    }

    async fn post_form(
        &mut self,
        app: &TestApp,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let response = self
            .client
            .post(app.url(path))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .await
            .unwrap();
        self.remember(response.headers());
        response
    }

    /// Opens the login form and returns its CSRF token.
    async fn login_token(&mut self, app: &TestApp) -> String {
        let page = self.get(app, "/admin/login").await.text().await.unwrap();
        let start = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
        page[start..].split('"').next().unwrap().to_owned()
    }

    async fn login(&mut self, app: &TestApp, key: &str) -> reqwest::Response {
        let csrf = self.login_token(app).await;
        self.post_form(app, "/admin/login", &[("master_key", key), ("csrf", &csrf)])
            .await
    }

    /// Logs in with an account's email and password, from `address` (`X-Forwarded-For`; the
    /// test's app trusts loopback as a proxy).
    async fn login_account(
        &mut self,
        app: &TestApp,
        email: &str,
        password: &str,
        address: &str,
    ) -> reqwest::Response {
        let csrf = self.login_token(app).await;
        let response = self
            .client
            .post(app.url("/admin/login"))
            .header("cookie", self.cookie_header())
            .header("x-forwarded-for", address)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
            ]))
            .send()
            .await
            .unwrap();
        self.remember(response.headers());
        response
    }

    /// The app page's CSRF token (only a logged-in browser gets the page).
    async fn csrf(&mut self, app: &TestApp) -> String {
        let page = self.get(app, "/admin").await.text().await.unwrap();
        let start = page.find(r#"name="csrf-token" content=""#).unwrap()
            + r#"name="csrf-token" content=""#.len();
        page[start..].split('"').next().unwrap().to_owned()
    }

    async fn api_post(
        &self,
        app: &TestApp,
        path: &str,
        csrf: Option<&str>,
        body: Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(app.url(path))
            .header("cookie", self.cookie_header())
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send().await.unwrap()
    }
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

#[tokio::test]
async fn logging_in_gives_a_strict_http_only_session_that_the_api_accepts() {
    let app = spawn_app().await;
    let mut browser = Browser::new();

    let response = browser.get(&app, "/admin").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin/login");

    let response = browser.login(&app, MASTER_KEY).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin");
    let set_cookie: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("saas_admin_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains(MASTER_KEY));

    // The page carries a CSRF token, never the key.
    let page = browser.get(&app, "/admin").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!page.text().await.unwrap().contains(MASTER_KEY));
    let csrf = browser.csrf(&app).await;

    // Reads need only the cookie; changes need the CSRF token too.
    let list = browser.get(&app, "/api/organizations").await;
    assert_eq!(list.status(), 200);
    let events_before = app.event_count().await;
    let forged = browser
        .api_post(
            &app,
            "/api/organizations/create",
            None,
            json!({"name": "Forged"}),
        )
        .await;
    assert_error(forged, 403, "csrf_failed").await;
    let wrong = browser
        .api_post(
            &app,
            "/api/organizations/create",
            Some("not-the-token"),
            json!({"name": "Forged"}),
        )
        .await;
    assert_error(wrong, 403, "csrf_failed").await;
    assert_eq!(
        app.event_count().await,
        events_before,
        "a refused change wrote nothing"
    );

    let created = browser
        .api_post(
            &app,
            "/api/organizations/create",
            Some(&csrf),
            json!({"name": "Acme"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let position = created.json::<Value>().await.unwrap()["position"]
        .as_i64()
        .unwrap();
    // The change is recorded with the same actor as one made with the key.
    let (_, audit) = app
        .get_json(
            &format!("/api/audit/events?aggregate_type=Organization&wait_for_position={position}"),
            None,
        )
        .await;
    let fingerprint = &audit["events"][0]["actor"];
    assert!(
        fingerprint.as_str().unwrap().starts_with("admin:"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_wrong_key_or_a_forged_login_form_opens_no_session() {
    let app = spawn_app().await;
    let mut browser = Browser::new();

    let response = browser.login(&app, "mk-wrong-key-0123456789").await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("not the master key")
    );
    assert!(
        !browser
            .cookies
            .iter()
            .any(|(k, _)| k == "saas_admin_session")
    );

    // The right key from a form that did not come from our login page.
    let mut other = Browser::new();
    let response = other
        .post_form(
            &app,
            "/admin/login",
            &[("master_key", MASTER_KEY), ("csrf", "guess")],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(!other.cookies.iter().any(|(k, _)| k == "saas_admin_session"));

    // A body that is not a form is a JSON error, and does not echo what was sent.
    let response = app
        .client
        .post(app.url("/admin/login"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"master_key": "{MASTER_KEY}"}}"#))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 400, "invalid_form").await;
    assert!(!body.to_string().contains(MASTER_KEY));

    let count: i64 = sqlx::query_scalar("select count(*) from admin_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn failed_logins_are_limited_but_the_right_key_still_logs_in() {
    let app = spawn_app().await;
    let mut browser = Browser::new();
    for attempt in 0..5 {
        let response = browser
            .login(&app, &format!("mk-guess-{attempt:020}"))
            .await;
        assert_eq!(response.status(), 401);
    }
    // A sixth wrong key from the address waits for the window's end...
    let response = browser.login(&app, "mk-guess-000000000000000000099").await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Too many failed logins")
    );
    assert!(
        !browser
            .cookies
            .iter()
            .any(|(k, _)| k == "saas_admin_session")
    );
    // ...but someone else's guesses from the same address do not lock the admin out.
    let response = browser.login(&app, MASTER_KEY).await;
    assert_eq!(response.status(), 303);
    assert!(
        browser
            .cookies
            .iter()
            .any(|(k, _)| k == "saas_admin_session")
    );
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_logout() {
    let app = spawn_app().await;
    let mut browser = Browser::new();
    browser.login(&app, MASTER_KEY).await;
    let csrf = browser.csrf(&app).await;
    assert_eq!(browser.get(&app, "/api/dashboard").await.status(), 200);

    // Idle past the limit: the API says so and the page sends the browser to log in.
    sqlx::query("update admin_sessions set last_seen_at = now() - interval '31 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = browser.get(&app, "/api/dashboard").await;
    assert_error(response, 401, "session_expired").await;
    let response = browser.get(&app, "/admin").await;
    assert_eq!(location(&response), "/admin/login");

    // A fresh session, then log out: the row is gone and the cookie is cleared.
    browser.login(&app, MASTER_KEY).await;
    let stale = browser.cookie_header();
    let wrong = browser
        .post_form(&app, "/admin/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        wrong.status(),
        403,
        "logging out needs this session's token"
    );
    let csrf = browser.csrf(&app).await;
    let response = browser
        .post_form(&app, "/admin/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin/login?logged_out=true");
    assert!(
        !browser
            .cookies
            .iter()
            .any(|(k, _)| k == "saas_admin_session")
    );
    let replayed = app
        .client
        .get(app.url("/api/dashboard"))
        .header("cookie", stale)
        .send()
        .await
        .unwrap();
    assert_error(replayed, 401, "session_expired").await;
}

#[tokio::test]
async fn rotating_the_master_key_ends_the_sessions_opened_with_the_old_one() {
    let app = spawn_app().await;
    let mut browser = Browser::new();
    browser.login(&app, MASTER_KEY).await;
    assert_eq!(browser.get(&app, "/api/dashboard").await.status(), 200);
    let database_url = app.database_url.clone();
    app.stop().await;

    let rotated = spawn_app_with_database(&database_url, |c| {
        c.master_key = "mk-rotated-1f2e3d4c5b6a79880706".to_owned().into();
    })
    .await;
    let response = browser.get(&rotated, "/api/dashboard").await;
    assert_error(response, 401, "session_expired").await;
    let response = browser.get(&rotated, "/admin").await;
    assert_eq!(location(&response), "/admin/login");
}

#[tokio::test]
async fn the_dashboard_sums_credits_spend_and_lists_teams_near_their_budget() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    for (team, credits) in [("team_a", "10"), ("team_b", "100")] {
        let (status, body) = app
            .post_json(
                "/api/teams/create",
                json!({"organization_id": "org_acme", "team_id": team, "team_alias": team,
                       "model_groups": ["gpt"], "credits": credits}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let today = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [
                {"request_id": "r1", "team_id": "team_a", "model": "gpt-4o", "provider_cost": "8.5",
                 "prompt_tokens": 10, "completion_tokens": 5, "occurred_at": today},
                {"request_id": "r2", "team_id": "team_b", "model": "gpt-4o-mini", "provider_cost": "0.25",
                 "prompt_tokens": 10, "completion_tokens": 5, "occurred_at": "2020-01-01T00:00:00Z"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let body = app
        .get_until(
            "/api/dashboard",
            Duration::from_secs(10),
            "usage in the dashboard",
            |b| b["spend"] == json!(8.75),
        )
        .await;
    assert_eq!(body["organizations"], 1);
    assert_eq!(body["teams"]["active"], 2);
    assert_eq!(body["credits"], json!(110));
    assert_eq!(body["remaining"], json!(101.25));
    assert_eq!(
        body["today"]["spend"],
        json!(8.5),
        "the 2020 record is not today's"
    );
    assert_eq!(body["today"]["requests"], 1);
    let near = body["near_budget"].as_array().unwrap();
    assert_eq!(near.len(), 1, "{body}");
    assert_eq!(near[0]["team_id"], "team_a");
    assert_eq!(near[0]["percent_used"], json!(85));
}

#[tokio::test]
async fn daily_usage_by_model_for_everyone_an_organization_or_a_team() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_a", "team_alias": "A",
                   "model_groups": ["gpt"], "credits": "10"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [
                {"request_id": "r1", "team_id": "team_a", "model": "gpt-4o", "provider_cost": "1.5",
                 "prompt_tokens": 10, "completion_tokens": 5, "occurred_at": "2026-11-20T10:00:00Z"},
                {"request_id": "r2", "team_id": "team_a", "model": "gpt-4o-mini", "provider_cost": "0.25",
                 "prompt_tokens": 10, "completion_tokens": 5, "occurred_at": "2026-11-20T11:00:00Z"},
                {"request_id": "r3", "team_id": "team_a", "model": "gpt-4o", "provider_cost": "2",
                 "prompt_tokens": 10, "completion_tokens": 5, "occurred_at": "2026-11-21T09:30:00Z"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let position: i64 = sqlx::query_scalar("select max(global_position) from events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for scope in ["", "&team_id=team_a", "&organization_id=org_acme"] {
        let (status, body) = app
            .get_json(
                &format!("/api/usage/daily?from=2026-11-20&to=2026-11-22{scope}"),
                Some(position),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["models"], json!(["gpt-4o", "gpt-4o-mini"]));
        let days = body["days"].as_array().unwrap();
        assert_eq!(days.len(), 3, "zero days are included: {body}");
        assert_eq!(days[0]["date"], "2026-11-20");
        assert_eq!(days[0]["spend"], json!(1.75));
        assert_eq!(
            days[0]["models"],
            json!({"gpt-4o": 1.5, "gpt-4o-mini": 0.25})
        );
        assert_eq!(days[1]["models"], json!({"gpt-4o": 2}));
        assert_eq!(days[2]["spend"], json!(0));
        assert_eq!(days[2]["models"], json!({}));
    }
    let (status, _) = app.get_json("/api/usage/daily?team_id=nobody", None).await;
    assert_eq!(status, 404);
    let response = app
        .admin_get("/api/usage/daily?team_id=team_a&organization_id=org_acme")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_query").await;
}

#[tokio::test]
async fn teams_can_be_searched_and_filtered_by_status() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    for (id, alias) in [
        ("team_r1", "Research Lab"),
        ("team_s1", "Sales"),
        ("team_r2", "research ops"),
    ] {
        let (status, _) = app
            .post_json(
                "/api/teams/create",
                json!({"organization_id": "org_acme", "team_id": id, "team_alias": alias, "model_groups": []}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, body) = app.post_json("/api/teams/team_r2/suspend", json!({})).await;
    let position = body["position"].as_i64().unwrap();
    let ids = |body: &Value| -> Vec<String> {
        body["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["team_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, body) = app.get_json("/api/teams?q=RESEARCH", Some(position)).await;
    assert_eq!(ids(&body), ["team_r1", "team_r2"]);
    let (_, body) = app
        .get_json("/api/teams?q=research&status=suspended", None)
        .await;
    assert_eq!(ids(&body), ["team_r2"]);
    let (_, body) = app.get_json("/api/teams?q=s1", None).await;
    assert_eq!(ids(&body), ["team_s1"], "ids are searched too");
    let (_, body) = app.get_json("/api/teams?q=%25", None).await;
    assert_eq!(
        ids(&body),
        Vec::<String>::new(),
        "a % is text, not a pattern"
    );
    let response = app
        .admin_get("/api/teams?status=gone")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_query").await;
}

#[tokio::test]
async fn litellms_catalog_is_listed_for_picking_models() {
    let litellm = double().await;
    let url = litellm.base_url();
    let app = spawn_app_with(move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
    })
    .await;
    let (status, body) = app.get_json("/api/litellm/models", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["models"],
        json!(["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"])
    );

    let without = spawn_app().await;
    let response = without
        .admin_get("/api/litellm/models")
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "litellm_not_configured").await;
}

#[tokio::test]
async fn revealing_a_key_is_a_post_that_needs_the_sessions_csrf_token() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.team(crate::helpers::TeamSpec::new("team_reveal", "10"))
        .await;
    let mut browser = Browser::new();
    browser.login(&app, MASTER_KEY).await;
    let csrf = browser.csrf(&app).await;
    let before = app.event_count().await;

    // What another site's page could make the browser do: a GET (an image tag), or a POST
    // without the token.
    let response = browser
        .get(&app, "/api/teams/team_reveal/virtual-key")
        .await;
    assert_error(response, 405, "method_not_allowed").await;
    let response = browser
        .api_post(&app, "/api/teams/team_reveal/virtual-key", None, json!({}))
        .await;
    assert_error(response, 403, "csrf_failed").await;
    assert_eq!(
        app.event_count().await,
        before,
        "a refused reveal is not recorded"
    );

    let response = browser
        .api_post(
            &app,
            "/api/teams/team_reveal/virtual-key",
            Some(&csrf),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["virtual_key"].as_str().unwrap().starts_with("sk-"),
        "{body}"
    );
    assert_eq!(
        app.event_count().await,
        before + 1,
        "the reveal is recorded"
    );
}

#[tokio::test]
async fn a_panel_sessions_idempotent_answer_is_never_replayed_to_anyone_unauthenticated() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let mut browser = Browser::new();
    browser.login(&app, MASTER_KEY).await;
    let csrf = browser.csrf(&app).await;
    let body = json!({"organization_id": "org_acme", "team_id": "team_idem",
        "team_alias": "Idem", "model_groups": ["gpt"], "credits": "5"});
    let as_the_session = || {
        browser
            .client
            .post(app.url("/api/teams/create"))
            .header("cookie", browser.cookie_header())
            .header("x-csrf-token", &csrf)
            .header("idempotency-key", "create-team-idem")
            .json(&body)
            .send()
    };
    let created = as_the_session().await.unwrap();
    assert_eq!(created.status(), 201);
    let key = created.json::<Value>().await.unwrap()["virtual_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Same key, path and body, with a forged session or none at all: refused, nothing stored.
    for cookie in [Some("saas_admin_session=forged-session-token"), None] {
        let mut request = app
            .client
            .post(app.url("/api/teams/create"))
            .header("idempotency-key", "create-team-idem")
            .json(&body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert!(response.headers().get("idempotent-replayed").is_none());
        let refused = assert_error(
            response,
            401,
            if cookie.is_some() {
                "session_expired"
            } else {
                "unauthorized"
            },
        )
        .await;
        assert!(!refused.to_string().contains(&key));
    }
    // The session itself gets its answer again.
    let replayed = as_the_session().await.unwrap();
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replayed.json::<Value>().await.unwrap()["virtual_key"],
        key.as_str()
    );
}

/// An account with a password, made with the master key; returns its id.
async fn account_with_password(app: &TestApp, email: &str, role: &str, password: &str) -> String {
    let (status, body) = app
        .post_json(
            "/api/accounts/create",
            json!({"email": email, "display_name": "Vera", "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["account_id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post_json(
            &format!("/api/accounts/{id}/password"),
            json!({"password": password}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

fn has_session(browser: &Browser) -> bool {
    browser
        .cookies
        .iter()
        .any(|(k, _)| k == "saas_admin_session")
}

#[tokio::test]
async fn an_account_logs_in_with_its_password_and_its_role_holds_for_the_session() {
    let app =
        spawn_app_with(|c| c.edge.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_v", "model_groups": ["gpt"], "credits": 10}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id =
        account_with_password(&app, "vera@example.com", "viewer", "correct horse battery").await;
    let mut browser = Browser::new();
    let wrong = browser
        .login_account(&app, "vera@example.com", "wrong horse battery", "192.0.2.1")
        .await;
    assert_eq!(wrong.status(), 401);
    let unknown = browser
        .login_account(
            &app,
            "nobody@example.com",
            "correct horse battery",
            "192.0.2.1",
        )
        .await;
    assert_eq!(unknown.status(), 401);
    let response = browser
        .login_account(
            &app,
            "VERA@example.com",
            "correct horse battery",
            "192.0.2.1",
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(has_session(&browser));
    let me: Value = browser.get(&app, "/api/me").await.json().await.unwrap();
    assert_eq!(me["role"], "viewer", "{me}");
    assert_eq!(me["account"]["email"], "vera@example.com", "{me}");
    assert_eq!(me["may"]["billing"], false, "{me}");
    // The viewer's session cannot add credits, even with the session's CSRF token.
    let csrf = browser.csrf(&app).await;
    let add = "/api/teams/team_v/credits/add";
    let five = json!({"amount": 5});
    assert_error(
        browser.api_post(&app, add, Some(&csrf), five.clone()).await,
        403,
        "not_permitted",
    )
    .await;
    // A new role applies to the open session at once.
    let role = format!("/api/accounts/{id}/role");
    assert_eq!(
        app.post_json(&role, json!({"role": "billing"})).await.0,
        200
    );
    assert_eq!(
        browser
            .api_post(&app, add, Some(&csrf), five)
            .await
            .status(),
        200
    );
    // The audit names the account's session.
    let (_, history) = app.get_json("/api/teams/team_v/history", None).await;
    let actors: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(
        actors.contains(&format!("account:{id}/session").as_str()),
        "{actors:?}"
    );
    // ...and names the person.
    let named = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor"] == format!("account:{id}/session").as_str())
        .unwrap();
    assert_eq!(named["actor_name"], "Vera <vera@example.com>", "{named}");
    assert_eq!(
        history["events"][0]["actor_name"], "master key",
        "the team was created with the master key"
    );
    // Disabling the account ends its session on the next request.
    let disable = format!("/api/accounts/{id}/disable");
    assert_eq!(app.post_json(&disable, json!({})).await.0, 200);
    assert_eq!(browser.get(&app, "/api/teams").await.status(), 401);
    let again = browser
        .login_account(
            &app,
            "vera@example.com",
            "correct horse battery",
            "192.0.2.1",
        )
        .await;
    assert_eq!(again.status(), 401, "a disabled account cannot log in");
}

#[tokio::test]
async fn wrong_passwords_are_limited_per_account_without_locking_out_a_browser_it_knows() {
    let app =
        spawn_app_with(|c| c.edge.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let password = "the right passphrase";
    account_with_password(&app, "ana@example.com", "admin", password).await;
    // Ana logs in once from her browser, which is then known to her account.
    let mut ana = Browser::new();
    let first = ana
        .login_account(&app, "ana@example.com", password, "198.51.100.7")
        .await;
    assert_eq!(first.status(), 303);
    // A guesser spreads wrong passwords over many addresses: the account's own limit holds.
    let mut guesser = Browser::new();
    for attempt in 0..10 {
        let address = format!("203.0.113.{attempt}");
        let response = guesser
            .login_account(
                &app,
                "ana@example.com",
                &format!("guess {attempt:012}"),
                &address,
            )
            .await;
        assert_eq!(response.status(), 401, "guess {attempt}");
    }
    // From a new address, even the right password is now refused unchecked...
    let blocked = guesser
        .login_account(&app, "ana@example.com", password, "203.0.113.200")
        .await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    assert!(!has_session(&guesser));
    // ...but Ana's known browser still gets in, from any address.
    let mut ana_again = Browser::new();
    ana_again.cookies = ana
        .cookies
        .iter()
        .filter(|(k, _)| k == "saas_admin_device")
        .cloned()
        .collect();
    assert_eq!(ana_again.cookies.len(), 1, "the login left a device cookie");
    let response = ana_again
        .login_account(&app, "ana@example.com", password, "203.0.113.201")
        .await;
    assert_eq!(response.status(), 303);
    assert!(has_session(&ana_again));
}
