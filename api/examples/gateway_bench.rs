//! Gateway overhead benchmark: the latency `saas-api` adds to a chat completion over calling
//! the same upstream (the LiteLLM double or the real LiteLLM, a separate process) directly, at
//! fixed request rates (open loop at intended send times), the peak memory of the `saas-api`
//! process, and a check that every request saas-api served is in the ledger with the tokens
//! its answer reported. `scripts/bench-gateway` starts the processes and appends the table to
//! bench/RESULTS.md.
//!
//!   gateway_bench API_URL UPSTREAM_URL ADMIN_KEY SAAS_API_PID [SECONDS] [RATES...]

use std::time::{Duration, Instant};

use anyhow::Context;

#[path = "shared/pacing.rs"]
mod pacing;
use serde_json::{Value, json};

/// One request's fate: its latency from when it should have been sent, and what the answer
/// said it used (`None`: it failed).
type Outcome = (Duration, Option<Tokens>);

#[derive(Debug, Default, Clone, Copy)]
struct Tokens {
    prompt: i64,
    completion: i64,
}

/// The latencies of one run, sorted, with failures counted at the far end: a failed request
/// is never faster than a served one, so failures cannot flatter a percentile.
struct Run {
    served: Vec<Duration>,
    failed: usize,
    tokens: Tokens,
}

impl Run {
    fn total(&self) -> usize {
        self.served.len() + self.failed
    }

    /// The `p` percentile over every request sent; `None` when it falls among the failures.
    fn percentile(&self, p: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let index = ((total as f64 - 1.0) * p).round() as usize;
        self.served
            .get(index)
            .map(|latency| latency.as_secs_f64() * 1000.0)
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "failed".to_owned(), |v| format!("{v:.2}"))
}

/// Sends `rate` requests a second for `seconds` to `url` (open loop): request `i` is due at
/// `start + i / rate` and its latency runs from then, not from when the generator got round to
/// it, so a generator or server that falls behind shows as latency (no coordinated omission).
async fn run(
    http: &reqwest::Client,
    url: &str,
    keys: &[String],
    body: &Value,
    rate: u64,
    seconds: u64,
) -> Run {
    let total = rate * seconds;
    let runtime = tokio::runtime::Handle::current();
    let (http, url, keys, body) = (http.clone(), url.to_owned(), keys.to_vec(), body.clone());
    let tasks = pacing::paced(rate as f64, total, move |i, due| {
        let key = &keys[i as usize % keys.len()];
        let request = http.post(&url).bearer_auth(key).json(&body);
        runtime.spawn(async move {
            let tokens = async {
                let response = request.send().await.ok()?;
                if !response.status().is_success() {
                    return None;
                }
                let answer: Value = response.json().await.ok()?;
                Some(Tokens {
                    prompt: answer["usage"]["prompt_tokens"].as_i64()?,
                    completion: answer["usage"]["completion_tokens"].as_i64()?,
                })
            }
            .await;
            (due.elapsed(), tokens)
        })
    })
    .await;
    let mut run = Run {
        served: Vec::with_capacity(tasks.len()),
        failed: 0,
        tokens: Tokens::default(),
    };
    for task in tasks {
        let outcome: Outcome = task.await.unwrap_or((Duration::MAX, None));
        match outcome {
            (latency, Some(tokens)) => {
                run.served.push(latency);
                run.tokens.prompt += tokens.prompt;
                run.tokens.completion += tokens.completion;
            }
            (_, None) => run.failed += 1,
        }
    }
    run.served.sort();
    run
}

fn peak_rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: gateway_bench API_URL UPSTREAM_URL ADMIN_KEY PID [SECONDS] [RATES...]"
    );
    let (api, upstream, admin, pid) = (&args[0], &args[1], &args[2], &args[3]);
    let seconds: u64 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let rates: Vec<u64> = if args.len() > 5 {
        args[5..]
            .iter()
            .map(|r| r.parse())
            .collect::<Result<_, _>>()?
    } else {
        vec![200, 1000]
    };
    let mode = std::env::var("BENCH_BUDGET_MODE").unwrap_or_else(|_| "hard".into());
    // The model the upstream serves, and what to call the upstream in the table.
    let model = std::env::var("BENCH_MODEL").unwrap_or_else(|_| "fake-gpt".into());
    let upstream_name =
        std::env::var("BENCH_UPSTREAM_NAME").unwrap_or_else(|_| "the upstream".into());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()?;
    let post = |path: &str, body: Value| {
        http.post(format!("{api}{path}"))
            .header("x-admin-key", admin)
            .json(&body)
            .send()
    };
    post(
        "/api/organizations/create",
        json!({"organization_id": "org_bench", "name": "Bench"}),
    )
    .await?;
    post(
        "/api/model-groups/create",
        json!({"group_name": "bench", "models": [model]}),
    )
    .await?;
    // BENCH_TEAMS teams share the load round-robin (1: one busy team, the worst case for holds).
    let team_count: usize = std::env::var("BENCH_TEAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut keys = Vec::with_capacity(team_count);
    for n in 0..team_count {
        let team_id = format!("team_bench_{n}");
        let team: Value = post(
            "/api/teams/create",
            json!({"organization_id": "org_bench", "team_id": team_id, "team_alias": team_id,
                   "model_groups": ["bench"], "credits": 1_000_000_000, "budget_mode": mode}),
        )
        .await?
        .json()
        .await?;
        keys.push(
            team["virtual_key"]
                .as_str()
                .context("team created")?
                .to_owned(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let shown: Value = http
                .get(format!("{api}/api/teams/{team_id}"))
                .header("x-admin-key", admin)
                .send()
                .await?
                .json()
                .await?;
            if shown["litellm_sync"]["status"] == "in_sync" {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "team never synced: {shown}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let body = json!({"model": model, "max_tokens": 64,
                      "messages": [{"role": "user", "content": "Say hello in one short sentence."}]});
    let direct = format!("{upstream}/v1/chat/completions");
    let via = format!("{api}/v1/chat/completions");
    // Warm connections and caches on both paths.
    run(&http, &direct, &keys, &body, 100, 2).await;
    let warm = run(&http, &via, &keys, &body, 100, 2).await;
    let mut served_via = warm.served.len() as i64;
    let mut tokens_via = warm.tokens;

    println!("| rate (req/s) | path | requests | failed | p50 ms | p99 ms | p99.9 ms |");
    println!("|---|---|---|---|---|---|---|");
    let mut added = Vec::new();
    for rate in rates {
        let d = run(&http, &direct, &keys, &body, rate, seconds).await;
        let v = run(&http, &via, &keys, &body, rate, seconds).await;
        served_via += v.served.len() as i64;
        tokens_via.prompt += v.tokens.prompt;
        tokens_via.completion += v.tokens.completion;
        for (path, r) in [
            (format!("direct to {upstream_name}"), &d),
            (
                format!("through saas-api ({mode} budget, usage recorded)"),
                &v,
            ),
        ] {
            println!(
                "| {rate} | {path} | {} | {} | {} | {} | {} |",
                r.total(),
                r.failed,
                ms(r.percentile(0.5)),
                ms(r.percentile(0.99)),
                ms(r.percentile(0.999)),
            );
        }
        let diff = |p| Some(v.percentile(p)? - d.percentile(p)?);
        added.push((rate, diff(0.5), diff(0.99)));
    }
    println!();
    for (rate, p50, p99) in added {
        println!(
            "Added by saas-api at {rate} req/s: p50 {} ms, p99 {} ms.",
            ms(p50),
            ms(p99)
        );
    }
    // Every request saas-api answered must be in the ledger, once, with the tokens its answer
    // reported: the usage reports of the teams, summed, once the recorder has caught up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (recorded, prompt, completion) = loop {
        let mut sums = (0, 0, 0);
        for n in 0..team_count {
            let usage: Value = http
                .get(format!("{api}/api/teams/team_bench_{n}/usage"))
                .header("x-admin-key", admin)
                .send()
                .await?
                .json()
                .await?;
            sums.0 += usage["request_count"].as_i64().context("usage report")?;
            sums.1 += usage["prompt_tokens"].as_i64().context("usage report")?;
            sums.2 += usage["completion_tokens"]
                .as_i64()
                .context("usage report")?;
        }
        if sums.0 >= served_via || Instant::now() > deadline {
            break sums;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "Ledger: {recorded} usage records for {served_via} requests served through saas-api; \
         prompt tokens {prompt} recorded / {} answered, completion tokens {completion} / {}.",
        tokens_via.prompt, tokens_via.completion
    );
    anyhow::ensure!(
        recorded == served_via
            && prompt == tokens_via.prompt
            && completion == tokens_via.completion,
        "the ledger does not match what was served"
    );
    match peak_rss_mb(pid) {
        Some(mb) => println!("Peak RSS of saas-api over the run: {mb:.1} MB."),
        None => println!("Peak RSS of saas-api: not readable."),
    }
    Ok(())
}
