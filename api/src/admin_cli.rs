//! `saas-api admin ...`: the admin API from a shell, for operators who script. It talks to a
//! running service over HTTP with the admin key and prints the service's JSON answers; an error
//! answer is printed to stderr and the command exits with status 1.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Number, Value, json};

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The service's base URL.
    #[arg(long, env = "SAAS_URL", default_value = "http://127.0.0.1:8003")]
    url: String,
    /// The admin key (else SAAS_ADMIN_KEY, else MASTER_KEY from the environment).
    #[arg(long, env = "SAAS_ADMIN_KEY", hide_env_values = true)]
    key: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Organizations.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Model groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Teams, their credits, status and keys.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Operators' accounts and their API keys (owners only).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Usage of one team, one organization, or every team.
    Usage {
        /// A team id (omit for every team, or use --org).
        team_id: Option<String>,
        #[arg(long)]
        org: Option<String>,
        /// A date (2026-11-01) or RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum OrgsCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        id: Option<String>,
    },
    List,
    Show {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum AccountsCommand {
    /// A named account: `--role` is owner, admin, billing, support or viewer.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
    },
    List,
    /// Changes an account's role.
    Role {
        id: String,
        role: String,
    },
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// Issues an API key for the account (printed once; use it as the admin key).
    Key {
        id: String,
        #[arg(long)]
        name: String,
        /// No wider than the account's; the account's own if absent.
        #[arg(long)]
        role: Option<String>,
        /// RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Lists the account's keys and their last use.
    Keys {
        id: String,
    },
    /// Sets the account's password, read from the first line of standard input (never an
    /// argument: those end up in shell histories and process lists).
    Password {
        id: String,
    },
    /// Grants the role for these organizations only (comma-separated), or `--all`.
    Organizations {
        id: String,
        #[arg(long, value_delimiter = ',', conflicts_with = "all")]
        only: Vec<String>,
        #[arg(long)]
        all: bool,
    },
    Revoke {
        id: String,
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
enum GroupsCommand {
    Create {
        name: String,
        /// Comma-separated LiteLLM model names.
        #[arg(long, value_delimiter = ',', required = true)]
        models: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    List,
}

#[derive(Subcommand, Debug)]
enum TeamsCommand {
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        alias: String,
        #[arg(long)]
        id: Option<String>,
        /// Comma-separated model groups.
        #[arg(long, value_delimiter = ',', required = true)]
        groups: Vec<String>,
        /// Initial credits in USD (exact decimal).
        #[arg(long, default_value = "0")]
        credits: String,
        /// hard or soft.
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        markup: Option<String>,
        #[arg(long)]
        rpm: Option<u64>,
        #[arg(long)]
        tpm: Option<u64>,
    },
    List {
        #[arg(long)]
        org: Option<String>,
    },
    Show {
        id: String,
    },
    AddCredits {
        id: String,
        /// USD, exact decimal.
        amount: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Suspend {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Resume {
        id: String,
    },
    RotateKey {
        id: String,
    },
    /// Reveals the team's virtual key (the reveal is recorded in the audit trail).
    Key {
        id: String,
    },
}

/// A decimal typed on the command line, sent as an exact JSON number.
fn money(field: &str, raw: &str) -> anyhow::Result<Value> {
    let number: Number = raw
        .parse()
        .ok()
        .filter(|_| raw.parse::<rust_decimal::Decimal>().is_ok())
        .with_context(|| format!("{field} must be a decimal number, got {raw:?}"))?;
    Ok(Value::Number(number))
}

fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    Value::Object(map)
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn segment(id: &str) -> String {
    urlencode(id)
}

/// Runs one admin command; `Ok(())` when the service answered 2xx.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let key = args
        .key
        .or_else(|| std::env::var("MASTER_KEY").ok())
        .context("no admin key: pass --key or set SAAS_ADMIN_KEY (or MASTER_KEY)")?;
    let (method, path, body) = request(args.command)?;
    let client = reqwest::Client::new();
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let mut request = client
        .request(method, &url)
        .header("x-admin-key", key)
        .header("accept", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach saas-api at {}", args.url))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        let code = value["error"]["code"].as_str().unwrap_or("error");
        bail!("{status}: {code}: {message}");
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    out.write_all(b"\n")?;
    Ok(())
}

type Call = (reqwest::Method, String, Option<Value>);

fn request(command: AdminCommand) -> anyhow::Result<Call> {
    use reqwest::Method;
    let post = |path: String, body: Value| Ok((Method::POST, path, Some(body)));
    let get = |path: String| Ok((Method::GET, path, None));
    match command {
        AdminCommand::Orgs(OrgsCommand::Create { name, id }) => post(
            "/api/organizations/create".into(),
            object(vec![
                ("name", Some(json!(name))),
                ("organization_id", id.map(Value::String)),
            ]),
        ),
        AdminCommand::Orgs(OrgsCommand::List) => get("/api/organizations".into()),
        AdminCommand::Orgs(OrgsCommand::Show { id }) => {
            get(format!("/api/organizations/{}", segment(&id)))
        }
        AdminCommand::Groups(GroupsCommand::Create {
            name,
            models,
            description,
        }) => post(
            "/api/model-groups/create".into(),
            object(vec![
                ("group_name", Some(json!(name))),
                ("models", Some(json!(models))),
                ("description", description.map(Value::String)),
            ]),
        ),
        AdminCommand::Groups(GroupsCommand::List) => get("/api/model-groups".into()),
        AdminCommand::Accounts(command) => {
            let account = |id: &str| format!("/api/accounts/{}", segment(id));
            match command {
                AccountsCommand::Create { email, name, role } => post(
                    "/api/accounts/create".into(),
                    json!({"email": email, "display_name": name, "role": role}),
                ),
                AccountsCommand::List => get("/api/accounts".into()),
                AccountsCommand::Role { id, role } => {
                    post(format!("{}/role", account(&id)), json!({"role": role}))
                }
                AccountsCommand::Disable { id } => {
                    post(format!("{}/disable", account(&id)), json!({}))
                }
                AccountsCommand::Enable { id } => {
                    post(format!("{}/enable", account(&id)), json!({}))
                }
                AccountsCommand::Key {
                    id,
                    name,
                    role,
                    expires_at,
                } => post(
                    format!("{}/api-keys", account(&id)),
                    object(vec![
                        ("name", Some(json!(name))),
                        ("role", role.map(Value::String)),
                        ("expires_at", expires_at.map(Value::String)),
                    ]),
                ),
                AccountsCommand::Keys { id } => get(format!("{}/api-keys", account(&id))),
                AccountsCommand::Password { id } => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    let password = line.trim_end_matches(['\r', '\n']);
                    post(
                        format!("{}/password", account(&id)),
                        json!({"password": password}),
                    )
                }
                AccountsCommand::Organizations { id, only, all } => {
                    if !all && only.is_empty() {
                        bail!(
                            "name the organizations with --only a,b or grant every one with --all"
                        );
                    }
                    let organizations = if all { Value::Null } else { json!(only) };
                    post(
                        format!("{}/organizations", account(&id)),
                        json!({"organizations": organizations}),
                    )
                }
                AccountsCommand::Revoke { id, key_id } => post(
                    format!("{}/api-keys/{}/revoke", account(&id), segment(&key_id)),
                    json!({}),
                ),
            }
        }
        AdminCommand::Teams(TeamsCommand::Create {
            org,
            alias,
            id,
            groups,
            credits,
            mode,
            markup,
            rpm,
            tpm,
        }) => post(
            "/api/teams/create".into(),
            object(vec![
                ("organization_id", Some(json!(org))),
                ("team_alias", Some(json!(alias))),
                ("team_id", id.map(Value::String)),
                ("model_groups", Some(json!(groups))),
                ("credits", Some(money("credits", &credits)?)),
                ("budget_mode", mode.map(Value::String)),
                (
                    "markup_percent",
                    markup.map(|m| money("markup", &m)).transpose()?,
                ),
                ("rpm_limit", rpm.map(|n| json!(n))),
                ("tpm_limit", tpm.map(|n| json!(n))),
            ]),
        ),
        AdminCommand::Teams(TeamsCommand::List { org }) => {
            get(format!("/api/teams{}", query(&[("organization_id", &org)])))
        }
        AdminCommand::Teams(TeamsCommand::Show { id }) => {
            get(format!("/api/teams/{}", segment(&id)))
        }
        AdminCommand::Teams(TeamsCommand::AddCredits { id, amount, reason }) => post(
            format!("/api/teams/{}/credits/add", segment(&id)),
            object(vec![
                ("amount", Some(money("amount", &amount)?)),
                ("reason", reason.map(Value::String)),
            ]),
        ),
        AdminCommand::Teams(TeamsCommand::Suspend { id, reason }) => post(
            format!("/api/teams/{}/suspend", segment(&id)),
            object(vec![("reason", reason.map(Value::String))]),
        ),
        AdminCommand::Teams(TeamsCommand::Resume { id }) => {
            post(format!("/api/teams/{}/resume", segment(&id)), json!({}))
        }
        AdminCommand::Teams(TeamsCommand::RotateKey { id }) => {
            post(format!("/api/teams/{}/rotate-key", segment(&id)), json!({}))
        }
        AdminCommand::Teams(TeamsCommand::Key { id }) => {
            get(format!("/api/teams/{}/virtual-key", segment(&id)))
        }
        AdminCommand::Usage {
            team_id,
            org,
            from,
            to,
        } => {
            let period = query(&[("from", &from), ("to", &to)]);
            match (team_id, org) {
                (Some(team), _) => get(format!("/api/teams/{}/usage{period}", segment(&team))),
                (None, Some(org)) => get(format!(
                    "/api/organizations/{}/usage{period}",
                    segment(&org)
                )),
                (None, None) => get(format!("/api/usage/teams{period}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_sent_exactly_and_nonsense_is_refused() {
        assert_eq!(money("amount", "25.50").unwrap().to_string(), "25.50");
        assert!(money("amount", "ten").is_err());
        assert!(money("amount", "1.2.3").is_err());
    }

    #[test]
    fn ids_are_escaped_into_paths() {
        assert_eq!(segment("../etc/passwd"), "..%2Fetc%2Fpasswd");
        assert_eq!(
            query(&[("from", &Some("2026-11-01".into())), ("to", &None)]),
            "?from=2026-11-01"
        );
    }

    #[test]
    fn an_accounts_organizations_are_named_or_every_one() {
        let scope = |only: &[&str], all: bool| {
            request(AdminCommand::Accounts(AccountsCommand::Organizations {
                id: "acct_1".into(),
                only: only.iter().map(|o| o.to_string()).collect(),
                all,
            }))
        };
        let (_, path, body) = scope(&["org_a", "org_b"], false).unwrap();
        assert_eq!(path, "/api/accounts/acct_1/organizations");
        assert_eq!(body.unwrap()["organizations"], json!(["org_a", "org_b"]));
        let (_, _, body) = scope(&[], true).unwrap();
        assert!(body.unwrap()["organizations"].is_null());
        assert!(scope(&[], false).is_err(), "neither names nor --all");
    }
}
