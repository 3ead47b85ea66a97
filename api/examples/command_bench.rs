//! Admin command throughput: `saas-api` (its own process) driven over HTTP by closed-loop
//! clients, as `scripts/bench-commands` runs it. Phases:
//!
//! 1. create TEAMS teams (CLIENTS at a time);
//! 2. for SECONDS, a mix of create team (10 %), add credits (40 %), set rate limits (30 %) and
//!    assign/unassign a model group (20 %) on those teams, while a prober measures
//!    commit-to-read-model lag: it adds credits to its own team and reads the team back with
//!    `X-Wait-For-Position` set to the command's position, timing from the command's answer to
//!    the read's;
//!    then, open loop at half the rate the mix reached, add credits and rate limits on random
//!    teams for SECONDS (latency from each command's intended send time), with the prober;
//! 3. one hot team: CLIENTS clients adding credits to the same team for SECONDS, then the
//!    team's credits checked to the cent against what was acknowledged;
//! 4. a team with HISTORY events: add-credits on one team HISTORY times, then the latency of a
//!    command on it against one on a fresh team;
//!
//! and the peak memory of the `saas-api` process (VmHWM).
//!
//!   command_bench API_URL ADMIN_KEY SAAS_API_PID TEAMS SECONDS CLIENTS HISTORY

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

#[path = "shared/pacing.rs"]
mod pacing;
use serde_json::{Value, json};

const GROUPS: [&str; 4] = ["bench_a", "bench_b", "bench_c", "bench_d"];

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn peak_rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[derive(Clone)]
struct Admin {
    http: reqwest::Client,
    base: Arc<str>,
    key: Arc<str>,
}

impl Admin {
    /// POSTs a command; returns whether it succeeded and the position it wrote at.
    async fn post(&self, path: &str, body: &Value) -> (bool, i64) {
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-admin-key", &*self.key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let position = response
                    .headers()
                    .get("x-event-position")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let _ = response.bytes().await;
                (true, position)
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                tracing::warn!(%status, %path, %text, "command refused");
                (false, 0)
            }
            Err(error) => {
                tracing::warn!(%error, %path, "command failed");
                (false, 0)
            }
        }
    }

    async fn get_after(&self, path: &str, position: i64) -> bool {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-admin-key", &*self.key)
            .header("x-wait-for-position", position.to_string())
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

fn create_team_body(id: &str) -> Value {
    json!({"organization_id": "org_bench", "team_id": id, "team_alias": id,
           "model_groups": [GROUPS[0]], "credits": 100, "budget_mode": "hard"})
}

/// Latencies of each kind of command, and failures.
#[derive(Default)]
struct Samples {
    by_kind: Vec<(&'static str, Vec<Duration>)>,
    failures: usize,
}

impl Samples {
    fn record(&mut self, kind: &'static str, took: Duration, ok: bool) {
        if !ok {
            self.failures += 1;
            return;
        }
        match self.by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, v)) => v.push(took),
            None => self.by_kind.push((kind, vec![took])),
        }
    }

    fn merge(&mut self, other: Samples) {
        self.failures += other.failures;
        for (kind, v) in other.by_kind {
            match self.by_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, mine)) => mine.extend(v),
                None => self.by_kind.push((kind, v)),
            }
        }
    }

    fn all(&self) -> Vec<Duration> {
        let mut all: Vec<Duration> = self.by_kind.iter().flat_map(|(_, v)| v.clone()).collect();
        all.sort();
        all
    }
}

/// One closed-loop client of the mixed phase: it owns the teams `i % clients == me` (so no
/// two clients race on one team) and knows which of them have the second group.
async fn mixed_client(
    admin: Admin,
    me: usize,
    clients: usize,
    teams: usize,
    stop: Arc<AtomicBool>,
    created: Arc<AtomicUsize>,
) -> Samples {
    let mut owned: Vec<(String, bool)> = (0..teams)
        .filter(|i| i % clients == me)
        .map(|i| (format!("team_{i}"), false))
        .collect();
    let mut samples = Samples::default();
    let mut n: u64 = me as u64;
    while !stop.load(Ordering::Relaxed) {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let roll = (n >> 33) % 100;
        let pick = ((n >> 13) as usize) % owned.len().max(1);
        let started = Instant::now();
        let (kind, ok) = if roll < 10 || owned.is_empty() {
            let id = format!("team_new_{}", created.fetch_add(1, Ordering::Relaxed));
            let (ok, _) = admin
                .post("/api/teams/create", &create_team_body(&id))
                .await;
            if ok {
                owned.push((id, false));
            }
            ("create team", ok)
        } else if roll < 50 {
            let id = &owned[pick].0;
            let (ok, _) = admin
                .post(
                    &format!("/api/teams/{id}/credits/add"),
                    &json!({"amount": "1.25"}),
                )
                .await;
            ("add credits", ok)
        } else if roll < 80 {
            let id = &owned[pick].0;
            let rpm = 100 + (n >> 40) % 1000;
            let (ok, _) = admin
                .post(
                    &format!("/api/teams/{id}/rate-limits"),
                    &json!({"rpm_limit": rpm, "tpm_limit": rpm * 1000}),
                )
                .await;
            ("set rate limits", ok)
        } else {
            let (id, has_second) = &mut owned[pick];
            let path = if *has_second { "unassign" } else { "assign" };
            let (ok, _) = admin
                .post(
                    &format!("/api/teams/{id}/model-groups/{path}"),
                    &json!({"group_name": GROUPS[1]}),
                )
                .await;
            if ok {
                *has_second = !*has_second;
            }
            ("assign/unassign group", ok)
        };
        samples.record(kind, started.elapsed(), ok);
    }
    samples
}

/// Commit-to-read-model lag, probed every 20 ms while the load runs; also how many reads gave
/// up (the service answers 503 after waiting `READ_WAIT_TIMEOUT_MS`, 3 s by default).
async fn lag_prober(admin: Admin, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let mut lags = Vec::new();
    let mut gave_up = 0;
    while !stop.load(Ordering::Relaxed) {
        let (ok, position) = admin
            .post(
                "/api/teams/team_probe/credits/add",
                &json!({"amount": "0.01"}),
            )
            .await;
        if ok {
            let answered = Instant::now();
            if admin
                .get_after("/api/teams/team_probe/budget", position)
                .await
            {
                lags.push(answered.elapsed());
            } else {
                gave_up += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lags.sort();
    (lags, gave_up)
}

/// Runs `total` commands made by `body(i)` from `clients` closed-loop clients; returns the
/// sorted latencies, failures and elapsed time.
async fn closed_loop(
    admin: &Admin,
    clients: usize,
    total: usize,
    path: impl Fn(usize) -> String + Send + Sync + 'static,
    body: impl Fn(usize) -> Value + Send + Sync + 'static,
) -> (Vec<Duration>, usize, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let path = Arc::new(path);
    let body = Arc::new(body);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (admin, next, path, body) = (admin.clone(), next.clone(), path.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let (ok, _) = admin.post(&path(i), &body(i)).await;
                samples.record("", t.elapsed(), ok);
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        all.merge(task.await.expect("client task"));
    }
    (all.all(), all.failures, started.elapsed())
}

/// Sends `rate` commands a second for `seconds` (open loop): command `i` is due at
/// `start + i / rate` (`pacing::paced`), and its latency runs from then.
/// Returns the sorted latencies of the acknowledged commands, the failures and the elapsed time.
async fn open_loop_mix(
    admin: &Admin,
    teams: usize,
    rate: f64,
    seconds: u64,
) -> (Vec<Duration>, usize, Duration) {
    let total = (rate * seconds as f64) as u64;
    let runtime = tokio::runtime::Handle::current();
    let admin = admin.clone();
    let started = Instant::now();
    let mut n: u64 = 0x9e37_79b9_7f4a_7c15;
    let tasks = pacing::paced(rate, total, move |_, due| {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let team = format!("team_{}", (n >> 20) as usize % teams.max(1));
        let (path, body) = if (n >> 33) % 10 < 6 {
            (
                format!("/api/teams/{team}/credits/add"),
                json!({"amount": "0.05"}),
            )
        } else {
            let rpm = 100 + (n >> 40) % 1000;
            (
                format!("/api/teams/{team}/rate-limits"),
                json!({"rpm_limit": rpm, "tpm_limit": rpm * 1000}),
            )
        };
        let admin = admin.clone();
        runtime.spawn(async move {
            let (ok, _) = admin.post(&path, &body).await;
            (due.elapsed(), ok)
        })
    })
    .await;
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for task in tasks {
        match task.await {
            Ok((latency, true)) => latencies.push(latency),
            _ => failures += 1,
        }
    }
    latencies.sort();
    (latencies, failures, started.elapsed())
}

fn line(what: &str, latencies: &[Duration], failures: usize, elapsed: Duration) -> String {
    format!(
        "| {what} | {} | {failures} | {:.0} | {:.2} | {:.2} |",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99)
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 7,
        "usage: command_bench API_URL ADMIN_KEY PID TEAMS SECONDS CLIENTS HISTORY"
    );
    let pid = args[2].clone();
    let teams: usize = args[3].parse().context("TEAMS")?;
    let seconds: u64 = args[4].parse().context("SECONDS")?;
    let clients: usize = args[5].parse().context("CLIENTS")?;
    let history: usize = args[6].parse().context("HISTORY")?;
    let admin = Admin {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(clients * 2)
            .build()?,
        base: args[0].as_str().into(),
        key: args[1].as_str().into(),
    };

    let (ok, _) = admin
        .post(
            "/api/organizations/create",
            &json!({"organization_id": "org_bench", "name": "Bench"}),
        )
        .await;
    anyhow::ensure!(
        ok,
        "could not create the organization (is the database fresh?)"
    );
    for group in GROUPS {
        let (ok, _) = admin
            .post(
                "/api/model-groups/create",
                &json!({"group_name": group, "models": ["fake-gpt"]}),
            )
            .await;
        anyhow::ensure!(ok, "could not create model group {group}");
    }
    for id in ["team_probe", "team_history", "team_fresh"] {
        let (ok, _) = admin.post("/api/teams/create", &create_team_body(id)).await;
        anyhow::ensure!(ok, "could not create {id}");
    }

    println!("| phase | commands | failed | commands/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");

    // 1. Populate.
    let (latencies, failures, elapsed) = closed_loop(
        &admin,
        clients,
        teams,
        |_| "/api/teams/create".to_owned(),
        |i| create_team_body(&format!("team_{i}")),
    )
    .await;
    println!(
        "{}",
        line(
            &format!("create {teams} teams"),
            &latencies,
            failures,
            elapsed
        )
    );

    // 2. The mix, with the lag prober.
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let prober = tokio::spawn(lag_prober(admin.clone(), stop.clone()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|me| {
            tokio::spawn(mixed_client(
                admin.clone(),
                me,
                clients,
                teams,
                stop.clone(),
                created.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut mix = Samples::default();
    for task in tasks {
        mix.merge(task.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    let (lags, gave_up) = prober.await.expect("prober");
    let all = mix.all();
    println!(
        "| mixed, {clients} clients, {seconds} s | {} | {} | {:.0} | {:.2} | {:.2} |",
        all.len(),
        mix.failures,
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    let mixed_rate = all.len() as f64 / elapsed.as_secs_f64();
    for (kind, latencies) in &mut mix.by_kind {
        latencies.sort();
        println!(
            "| &nbsp;&nbsp;{kind} | {} | | {:.0} | {:.2} | {:.2} |",
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(latencies, 0.5),
            percentile(latencies, 0.99)
        );
    }

    // 2b. Half of saturation, open loop: add credits (60 %) and rate limits (40 %) on random
    // teams sent at half the rate the closed loop reached, each due at its intended time and
    // timed from it, with the lag prober running.
    let half_rate = (mixed_rate / 2.0).max(1.0);
    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(lag_prober(admin.clone(), stop.clone()));
    let (open_loop, open_failed, open_elapsed) =
        open_loop_mix(&admin, teams, half_rate, seconds).await;
    stop.store(true, Ordering::Relaxed);
    let (half_lags, half_gave_up) = prober.await.expect("prober");
    println!(
        "{}",
        line(
            &format!("open loop at half that rate ({half_rate:.0}/s), {seconds} s"),
            &open_loop,
            open_failed,
            open_elapsed
        )
    );

    // 3. One hot team: every client on the same team.
    let (ok, _) = admin
        .post("/api/teams/create", &create_team_body("team_hot"))
        .await;
    anyhow::ensure!(ok, "could not create team_hot");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (admin, stop) = (admin.clone(), stop.clone());
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut newest = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let (ok, position) = admin
                        .post(
                            "/api/teams/team_hot/credits/add",
                            &json!({"amount": "0.01"}),
                        )
                        .await;
                    newest = newest.max(position);
                    samples.record("", t.elapsed(), ok);
                }
                (samples, newest)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut hot = Samples::default();
    let mut newest = 0;
    for task in tasks {
        let (samples, position) = task.await.expect("client task");
        hot.merge(samples);
        newest = newest.max(position);
    }
    let elapsed = started.elapsed();
    let acknowledged = hot.all();
    println!(
        "{}",
        line(
            &format!("add credits to ONE team, {clients} clients, {seconds} s"),
            &acknowledged,
            hot.failures,
            elapsed
        )
    );
    // The sum must be exact: 100 at creation plus a cent per acknowledged command.
    // (Read-your-writes: the read waits for the newest acknowledged position, and is asked
    // again if the service's read wait ran out first.)
    let deadline = Instant::now() + Duration::from_secs(60);
    let team: Value = loop {
        let response = admin
            .http
            .get(format!("{}/api/teams/team_hot", admin.base))
            .header("x-admin-key", &*admin.key)
            .header("x-wait-for-position", newest.to_string())
            .send()
            .await?;
        if response.status().is_success() {
            break response.json().await?;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the hot team never became readable: {}",
            response.status()
        );
    };
    let expected =
        rust_decimal::Decimal::from(100) + rust_decimal::Decimal::new(acknowledged.len() as i64, 2);
    let credits: rust_decimal::Decimal = team["credits"]
        .to_string()
        .trim_matches('"')
        .parse()
        .context("team credits")?;
    anyhow::ensure!(
        credits == expected,
        "the hot team's credits are {credits}, the acknowledged commands add up to {expected}"
    );
    let hot_summary = format!(
        "The hot team's credits after the run: {credits}, exactly 100 + 0.01 × {} acknowledged.",
        acknowledged.len()
    );

    // 4. A long history.
    let (latencies, failures, elapsed) = closed_loop(
        &admin,
        clients.min(8),
        history,
        |_| "/api/teams/team_history/credits/add".to_owned(),
        |_| json!({"amount": "0.01"}),
    )
    .await;
    println!(
        "{}",
        line(
            &format!("add credits to one team, {history} times"),
            &latencies,
            failures,
            elapsed
        )
    );
    for (team, what) in [
        (
            "team_history",
            format!("then one at a time on it ({history} events)"),
        ),
        (
            "team_fresh",
            "one at a time on a fresh team (2 events)".to_owned(),
        ),
    ] {
        let (latencies, failures, elapsed) = closed_loop(
            &admin,
            1,
            500,
            move |_| format!("/api/teams/{team}/credits/add"),
            |_| json!({"amount": "0.01"}),
        )
        .await;
        println!("{}", line(&what, &latencies, failures, elapsed));
    }
    println!();
    println!(
        "Commit-to-read-model lag during the mix ({} probes: a command's answer to its read model \
         answering with it; {gave_up} more gave up after the service's read wait): p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms.",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        percentile(&lags, 1.0)
    );
    println!(
        "Commit-to-read-model lag at half of saturation (open loop, {} probes; {half_gave_up} gave \
         up): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms.",
        half_lags.len(),
        percentile(&half_lags, 0.5),
        percentile(&half_lags, 0.99),
        percentile(&half_lags, 1.0)
    );
    println!("{hot_summary}");
    // What this PostgreSQL commits in the same run (scripts/bench-commands runs pgbench first).
    if let Some(tps) = std::env::var("BENCH_PGBENCH_TPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        println!(
            "pgbench, one event-sized insert per transaction at {clients} clients on this \
             PostgreSQL in the same run: {tps:.0} transactions/s; the mixed workload ran at \
             {mixed_rate:.0} commands/s, {:.1} % of it.",
            100.0 * mixed_rate / tps
        );
    }
    match peak_rss_mb(&pid) {
        Some(mb) => println!("Peak RSS of saas-api over the run: {mb:.1} MB."),
        None => println!("Peak RSS of saas-api: not readable."),
    }
    Ok(())
}
