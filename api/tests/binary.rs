//! The `saas-api` binary as operators run it: environment config, JSON logs with request ids,
//! refusal of placeholder keys, SIGTERM shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MASTER_KEY: &str = "mk-bin-4e8d2c6a0f1b3d5e7a9c";
const ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn saas_api(envs: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_saas-api"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

fn wait_healthy(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("saas-api exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("saas-api did not start listening");
}

#[tokio::test]
async fn serves_with_json_logs_and_stops_cleanly_on_sigterm() {
    let database_url = testkit::database_url(&testkit::empty_database_name()).unwrap();
    let port = free_port();
    let mut child = saas_api(&[
        ("DATABASE_URL", database_url),
        ("MASTER_KEY", MASTER_KEY.into()),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY.into()),
        ("PORT", port.to_string()),
        ("LOG_FORMAT", "json".into()),
    ])
    .arg("serve")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_healthy(port, &mut child);

    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/organizations/create"))
        .header("x-admin-key", MASTER_KEY)
        .header("x-request-id", "bin-req-42")
        .json(&serde_json::json!({"name": "From the binary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // SIGTERM: the process drains and exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");

    let mut logs = String::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read>),
    ]
    .into_iter()
    .flatten()
    {
        for line in BufReader::new(stream).lines() {
            logs.push_str(&line.unwrap());
            logs.push('\n');
        }
    }
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == "bin-req-42"),
        "a log line carries the request id:\n{logs}"
    );
    assert!(
        !logs.contains(MASTER_KEY),
        "the master key never reaches the logs"
    );
    assert!(logs.contains("saas-api stopped"));
}

#[test]
fn refuses_to_start_with_a_placeholder_or_missing_master_key() {
    for master_key in [None, Some("sk-1234"), Some("changeme")] {
        let mut envs = vec![
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/never_created".to_owned(),
            ),
            ("ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
        ];
        if let Some(key) = master_key {
            envs.push(("MASTER_KEY", key.to_owned()));
        }
        let output = saas_api(&envs).arg("serve").output().unwrap();
        assert!(!output.status.success(), "{master_key:?} must be refused");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("MASTER_KEY"),
            "the error names the variable: {stderr}"
        );
    }
}

#[tokio::test]
async fn migrate_creates_and_migrates_the_database_then_exits() {
    let name = testkit::empty_database_name();
    let output = saas_api(&[
        ("DATABASE_URL", testkit::database_url(&name).unwrap()),
        ("MASTER_KEY", MASTER_KEY.into()),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY.into()),
    ])
    .arg("migrate")
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pool = sqlx::PgPool::connect(&testkit::database_url(&name).unwrap())
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
}

#[test]
fn verify_chain_in_dev_mode_never_makes_up_a_key() {
    let dir = std::env::temp_dir().join(format!("saas-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.env");
    let output = saas_api(&[("SAAS_DEV_KEYS_FILE", keys.display().to_string())])
        .args(["verify", "--chain"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ENCRYPTION_KEY"), "{stderr}");
    assert!(!keys.exists(), "verify --chain created a dev keys file");
    std::fs::remove_dir_all(&dir).unwrap();
}
