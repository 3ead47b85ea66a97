//! Gateway overhead benchmark: the latency `saas-api` adds to a chat completion over calling
//! the same upstream (the LiteLLM double, a separate process) directly, at fixed request rates
//! (open loop), and the peak memory of the `saas-api` process. `scripts/bench-gateway` starts
//! the processes and appends the table to bench/RESULTS.md.
//!
//!   gateway_bench API_URL UPSTREAM_URL ADMIN_KEY SAAS_API_PID [SECONDS] [RATES...]

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Sends `rate` requests a second for `seconds` to `url`, each on its own task (open loop:
/// a slow answer does not delay the next send). Returns sorted latencies and failures.
async fn run(
    http: &reqwest::Client,
    url: &str,
    keys: &[String],
    body: &Value,
    rate: u64,
    seconds: u64,
) -> (Vec<Duration>, usize) {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity((rate * seconds) as usize);
    for i in 0..rate * seconds {
        ticker.tick().await;
        let key = &keys[i as usize % keys.len()];
        let request = http.post(url).bearer_auth(key).json(body);
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = match request.send().await {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            (started.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for task in tasks {
        match task.await {
            Ok((latency, true)) => latencies.push(latency),
            _ => failures += 1,
        }
    }
    latencies.sort();
    (latencies, failures)
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
        json!({"group_name": "bench", "models": ["fake-gpt"]}),
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
    let body = json!({"model": "fake-gpt", "max_tokens": 64,
                      "messages": [{"role": "user", "content": "Say hello in one short sentence."}]});
    let direct = format!("{upstream}/v1/chat/completions");
    let via = format!("{api}/v1/chat/completions");
    // Warm connections and caches on both paths.
    run(&http, &direct, &keys, &body, 100, 2).await;
    run(&http, &via, &keys, &body, 100, 2).await;

    println!("| rate (req/s) | path | requests | failed | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let mut added = Vec::new();
    for rate in rates {
        let (d, d_failed) = run(&http, &direct, &keys, &body, rate, seconds).await;
        let (v, v_failed) = run(&http, &via, &keys, &body, rate, seconds).await;
        println!(
            "| {rate} | direct to the upstream | {} | {d_failed} | {:.2} | {:.2} |",
            d.len(),
            percentile(&d, 0.5),
            percentile(&d, 0.99)
        );
        println!(
            "| {rate} | through saas-api ({mode} budget, usage recorded) | {} | {v_failed} | {:.2} | {:.2} |",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99)
        );
        added.push((
            rate,
            percentile(&v, 0.5) - percentile(&d, 0.5),
            percentile(&v, 0.99) - percentile(&d, 0.99),
        ));
    }
    println!();
    for (rate, p50, p99) in added {
        println!("Added by saas-api at {rate} req/s: p50 {p50:.2} ms, p99 {p99:.2} ms.");
    }
    match peak_rss_mb(pid) {
        Some(mb) => println!("Peak RSS of saas-api over the run: {mb:.1} MB."),
        None => println!("Peak RSS of saas-api: not readable."),
    }
    Ok(())
}
