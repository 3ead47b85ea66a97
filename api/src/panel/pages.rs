//! The panel's two server-rendered pages. Everything interpolated is escaped.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

pub enum Notice {
    Info(&'static str),
    Error(String),
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn document(title: &str, head: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/admin/assets/app.css">
{head}
</head>
<body>
{body}
</body>
</html>
"#,
        title = escape(title)
    )
}

pub fn login(csrf: &str, notice: Option<Notice>) -> String {
    let notice = match notice {
        Some(Notice::Info(text)) => format!(
            r#"<p class="notice info" role="status">{}</p>"#,
            escape(text)
        ),
        Some(Notice::Error(text)) => format!(
            r#"<p class="notice error" role="alert" id="login-error">{}</p>"#,
            escape(&text)
        ),
        None => String::new(),
    };
    document(
        "Log in · saas-litellm admin",
        "",
        &format!(
            r#"<main class="login">
<h1>saas-litellm admin</h1>
{notice}
<form method="post" action="/admin/login" id="account-login">
<input type="hidden" name="csrf" value="{csrf}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login-account">Log in</button>
</form>
<form method="post" action="/admin/login" autocomplete="off" id="key-login">
<input type="hidden" name="csrf" value="{csrf}">
<label for="master_key">Or the master key (break-glass owner)</label>
<input id="master_key" name="master_key" type="password" required>
<button type="submit" id="login-key">Log in with the key</button>
</form>
<p class="hint">What you type is checked once and never kept in the browser: you get a session cookie that ends after 30 minutes idle or 12 hours.</p>
</main>"#,
            csrf = escape(csrf)
        ),
    )
}

pub fn app_shell(csrf: &str) -> String {
    document(
        "saas-litellm admin",
        &format!(
            r#"<meta name="csrf-token" content="{}">
<script src="/admin/assets/app.js" defer></script>"#,
            escape(csrf)
        ),
        r##"<header class="top">
<a class="brand" href="#/">saas-litellm</a>
<nav id="nav">
<a href="#/">Dashboard</a>
<a href="#/organizations">Organizations</a>
<a href="#/model-groups">Model groups</a>
<a href="#/teams">Teams</a>
<a href="#/usage">Usage</a>
<a href="#/audit">Audit</a>
<a href="#/accounts" id="nav-accounts" hidden>Accounts</a>
</nav>
<span id="whoami" class="muted"></span>
<form method="post" action="/admin/logout" id="logout-form">
<input type="hidden" name="csrf" id="logout-csrf">
<button type="submit" class="link">Log out</button>
</form>
</header>
<div id="flash" role="status" aria-live="polite"></div>
<main id="view"><p class="muted">Loading…</p></main>
<noscript><p class="notice error">The admin panel needs JavaScript.</p></noscript>"##,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn the_login_page_shows_an_escaped_error() {
        let page = login("tok", Some(Notice::Error("<b>no</b>".into())));
        assert!(page.contains("&lt;b&gt;no&lt;/b&gt;"));
        assert!(page.contains(r#"name="csrf" value="tok""#));
    }
}
