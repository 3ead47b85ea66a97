//! The client against the test double, which answers like the captured real proxy.

use std::time::Duration;

use litellm::double::{Fault, LitellmDouble};
use litellm::{ClientConfig, KeySpec, LitellmClient, LitellmError, TeamSpec};
use secrecy::SecretString;

const MASTER: &str = "sk-master-test-1234";

/// With `LITELLM_TEST_URL` (and `LITELLM_TEST_MASTER_KEY`) set, the contract tests run against a
/// real proxy instead (`scripts/litellm-contract`), which keeps the double honest.
fn real_proxy() -> Option<LitellmClient> {
    let url = std::env::var("LITELLM_TEST_URL").ok()?;
    let key = std::env::var("LITELLM_TEST_MASTER_KEY").unwrap_or_else(|_| "sk-master-1234".into());
    Some(LitellmClient::new(ClientConfig::new(url, SecretString::from(key))).unwrap())
}

/// A team id unique to this run, so runs against one real proxy do not collide.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % 1000
}

async fn contract_client() -> (Option<LitellmDouble>, LitellmClient) {
    match real_proxy() {
        Some(client) => (None, client),
        None => {
            let (double, client) = setup().await;
            (Some(double), client)
        }
    }
}

async fn setup() -> (LitellmDouble, LitellmClient) {
    let double = LitellmDouble::start(MASTER, &["gpt-4o", "fake-gpt", "claude-3"])
        .await
        .unwrap();
    let mut config = ClientConfig::new(double.base_url(), SecretString::from(MASTER));
    config.timeout = Duration::from_millis(300);
    (double, LitellmClient::new(config).unwrap())
}

fn spec() -> TeamSpec {
    spec_for("team_a")
}

fn spec_for(team_id: &str) -> TeamSpec {
    TeamSpec {
        team_id: team_id.into(),
        team_alias: "A".into(),
        models: vec!["fake-gpt".into()],
        max_budget: Some(84.5),
        soft_budget: None,
        rpm_limit: Some(60),
        tpm_limit: None,
        blocked: false,
    }
}

#[tokio::test]
async fn teams_are_created_compared_updated_and_deleted() {
    let (_double, client) = contract_client().await;
    let team = unique("team");
    assert!(client.ready().await.unwrap());
    assert_eq!(client.team_info(&team).await.unwrap(), None);
    client.team_new(&spec_for(&team)).await.unwrap();
    let info = client.team_info(&team).await.unwrap().unwrap();
    assert!(info.matches(&spec_for(&team)), "{info:?}");

    let mut soft = spec_for(&team);
    soft.max_budget = None;
    soft.soft_budget = Some(67.6);
    soft.models = vec!["fake-gpt".into(), "other-model".into()];
    assert!(!info.matches(&soft));
    client.team_update(&soft).await.unwrap();
    let info = client.team_info(&team).await.unwrap().unwrap();
    assert!(info.matches(&soft), "{info:?}");

    let duplicate = client.team_new(&spec_for(&team)).await.unwrap_err();
    assert!(
        matches!(duplicate, LitellmError::Rejected { .. }),
        "{duplicate:?}"
    );

    client.team_delete(&team).await.unwrap();
    client.team_delete(&team).await.unwrap();
    assert_eq!(client.team_info(&team).await.unwrap(), None);
}

#[tokio::test]
async fn our_keys_are_created_once_blocked_and_deleted() {
    let (double, client) = contract_client().await;
    let team = unique("team");
    client.team_new(&spec_for(&team)).await.unwrap();
    let plaintext = format!("sk-our-own-key-{}", unique("k"));
    let key = KeySpec {
        key: SecretString::from(plaintext.clone()),
        team_id: team.clone(),
        fingerprint: "fp123".into(),
    };
    client.key_generate(&key).await.unwrap();
    client.key_generate(&key).await.unwrap();
    if let Some(double) = &double {
        assert_eq!(double.key_count(), 1, "a custom key cannot be minted twice");
    }
    let info = client.key_info(&plaintext).await.unwrap().unwrap();
    assert_eq!(info.team_id.as_deref(), Some(team.as_str()));
    assert_eq!(info.metadata["saas_fingerprint"], "fp123");
    assert!(!format!("{key:?}").contains("sk-our-own"));

    client.key_set_blocked(&plaintext, true).await.unwrap();
    assert!(
        client
            .key_info(&plaintext)
            .await
            .unwrap()
            .unwrap()
            .is_blocked()
    );
    client.key_set_blocked(&plaintext, false).await.unwrap();
    assert!(
        !client
            .key_info(&plaintext)
            .await
            .unwrap()
            .unwrap()
            .is_blocked()
    );

    client.key_delete(&plaintext).await.unwrap();
    // Deleting again is success (LiteLLM answers 404 "No keys found", which we accept).
    client.key_delete(&plaintext).await.unwrap();
    // The real proxy keeps answering `/key/info` for a deleted key from its in-memory cache
    // (seen 12 s after the delete with litellm 1.108.7), so `/key/info` is no proof of existence;
    // only the double can be asked directly.
    if let Some(double) = &double {
        assert_eq!(double.key_count(), 0);
    }
    client.team_delete(&team).await.unwrap();
}

#[tokio::test]
async fn the_catalog_lists_model_names() {
    let (_double, client) = setup().await;
    assert_eq!(
        client.model_names().await.unwrap(),
        ["claude-3", "fake-gpt", "gpt-4o"]
    );
}

#[tokio::test]
async fn faults_are_reported_as_what_they_are() {
    let (double, client) = setup().await;
    double.set_fault(Fault::ServerError);
    let error = client.team_info("x").await.unwrap_err();
    assert!(
        matches!(error, LitellmError::Server { status: 500, .. }) && error.is_transient(),
        "{error:?}"
    );
    double.set_fault(Fault::Unauthorized);
    let error = client.model_names().await.unwrap_err();
    assert!(matches!(error, LitellmError::Unauthorized(_)) && !error.is_transient());
    double.set_fault(Fault::Garbage);
    assert!(matches!(
        client.model_names().await.unwrap_err(),
        LitellmError::Garbage(_)
    ));
    double.set_fault(Fault::Slow(Duration::from_secs(2)));
    assert_eq!(
        client.model_names().await.unwrap_err(),
        LitellmError::Timeout
    );
    double.set_fault(Fault::None);

    double.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = client.model_names().await.unwrap_err();
    assert!(matches!(error, LitellmError::Unreachable(_)), "{error:?}");
    double.resume().await.unwrap();
    assert_eq!(client.model_names().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_wrong_master_key_is_unauthorized_and_never_echoed() {
    let (double, _) = setup().await;
    let client = LitellmClient::new(ClientConfig::new(
        double.base_url(),
        SecretString::from("sk-wrong-master"),
    ))
    .unwrap();
    let error = client.team_new(&spec()).await.unwrap_err();
    assert!(matches!(error, LitellmError::Unauthorized(_)));
    assert!(!error.to_string().contains("sk-wrong-master"));
}

#[tokio::test]
async fn teams_block_keys_update_and_keys_see_their_models() {
    let (_double, client) = contract_client().await;
    let team = unique("team");
    client.team_new(&spec_for(&team)).await.unwrap();
    client.team_set_blocked(&team, true).await.unwrap();
    assert!(client.team_info(&team).await.unwrap().unwrap().blocked);
    client.team_set_blocked(&team, false).await.unwrap();
    assert!(!client.team_info(&team).await.unwrap().unwrap().blocked);

    let plaintext = format!("sk-models-key-{}", unique("k"));
    let key = KeySpec {
        key: SecretString::from(plaintext.clone()),
        team_id: team.clone(),
        fingerprint: "fp".into(),
    };
    client.key_generate(&key).await.unwrap();
    assert_eq!(
        client.models_for_key(&plaintext).await.unwrap(),
        ["fake-gpt"]
    );
    // The team lists the key by its hash, with its blocked state (the reconciler relies on it).
    let hash = litellm::key_hash(&plaintext);
    let info = client.team_info(&team).await.unwrap().unwrap();
    assert_eq!(info.keys.len(), 1, "{info:?}");
    assert!(
        !info
            .key(&hash)
            .expect("the team lists its key")
            .is_blocked()
    );
    client.key_set_blocked(&hash, true).await.unwrap();
    let info = client.team_info(&team).await.unwrap().unwrap();
    assert!(
        info.key(&hash).expect("still listed").is_blocked(),
        "{info:?}"
    );
    client.key_set_blocked(&hash, false).await.unwrap();
    let info = client.team_info(&team).await.unwrap().unwrap();
    assert!(
        !info.key(&hash).expect("still listed").is_blocked(),
        "{info:?}"
    );
    client
        .key_update(
            &plaintext,
            serde_json::json!({"metadata": {"note": "updated"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        client.key_info(&plaintext).await.unwrap().unwrap().metadata["note"],
        "updated"
    );
    assert!(matches!(
        client.models_for_key("sk-not-a-real-key-000000").await,
        Err(LitellmError::Unauthorized(_))
    ));
    client.team_delete(&team).await.unwrap();
}
