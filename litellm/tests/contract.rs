//! What LiteLLM refuses on the request path, when, and with which error, checked against the
//! double by default and against the REAL proxy when `LITELLM_TEST_URL` is set
//! (`scripts/litellm-contract`, run by CI with `scripts/litellm/honest_upstream.py` behind it).
//! Every behaviour the double models for chat calls is here, so the double cannot drift from
//! the proxy unnoticed.

use std::time::Duration;

use litellm::double::LitellmDouble;
use serde_json::{Value, json};

/// The chat models and prices of `scripts/litellm/e2e-config.yaml`.
const MODELS: [&str; 2] = ["fake-gpt", "fake-gpt-2"];
/// Its embedding model (input billed at 0.001 a token, no output).
const EMBEDDING_MODEL: &str = "fake-embed";

struct Target {
    _double: Option<LitellmDouble>,
    url: String,
    master: String,
    http: reqwest::Client,
}

async fn target() -> Target {
    let http = reqwest::Client::new();
    if let Ok(url) = std::env::var("LITELLM_TEST_URL") {
        let master =
            std::env::var("LITELLM_TEST_MASTER_KEY").unwrap_or_else(|_| "sk-master-1234".into());
        return Target {
            _double: None,
            url,
            master,
            http,
        };
    }
    let master = "sk-master-contract-1234".to_owned();
    let double = LitellmDouble::start(&master, &[MODELS[0], MODELS[1], EMBEDDING_MODEL])
        .await
        .unwrap();
    for model in MODELS {
        double.set_prices(model, "0.001", "0.002");
    }
    double.set_prices(EMBEDDING_MODEL, "0.001", "0");
    // LiteLLM writes spend in batches, late; the double does too, a little sooner.
    double.set_spend_delay(Duration::from_secs(1));
    Target {
        url: double.base_url(),
        _double: Some(double),
        master,
        http,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid())
}

fn uuid() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

impl Target {
    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.master)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.master)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A team with `fields` and one key of ours under it; returns (team id, key).
    async fn team(&self, fields: Value) -> (String, String) {
        self.team_with_key(fields, json!({})).await
    }

    async fn team_with_key(&self, fields: Value, key_fields: Value) -> (String, String) {
        let team_id = unique("contract");
        let mut body = json!({"team_id": team_id, "team_alias": team_id});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = self.admin("/team/new", body).await;
        assert_eq!(status, 200, "{answer}");
        let key = format!("sk-{}{}", uuid(), uuid());
        let mut body = json!({"key": key, "team_id": team_id, "models": []});
        for (k, v) in key_fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = self.admin("/key/generate", body).await;
        assert_eq!(status, 200, "{answer}");
        (team_id, key)
    }

    /// A chat completion with a virtual key: (status, retry-after, body).
    async fn chat(&self, key: &str, extra: Value) -> (u16, Option<String>, Value) {
        let mut body = json!({"model": "fake-gpt", "max_tokens": 10,
                              "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, retry, response.json().await.unwrap_or(Value::Null))
    }

    /// A chat completion sent with `x-litellm-call-id: call_id`: (status, the call id header
    /// answered, body).
    async fn chat_as(
        &self,
        key: &str,
        call_id: &str,
        content: &str,
        model: &str,
    ) -> (u16, String, Value) {
        let body = json!({"model": model, "max_tokens": 10,
                          "messages": [{"role": "user", "content": content}]});
        let (status, echoed, _, text) =
            call(self, key, "/v1/chat/completions", call_id, body).await;
        (
            status,
            echoed,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// The team's spend-log row filed under `call_id`, once LiteLLM has written it.
    async fn spend_row_of_call(&self, team_id: &str, call_id: &str, what: &str) -> Value {
        eventually(40, async || {
            self.spend_rows(team_id)
                .await
                .into_iter()
                .find(|r| r["litellm_call_id"] == call_id)
        })
        .await
        .unwrap_or_else(|| panic!("{what} spend row never came"))
    }

    /// The spend-log rows of a team so far.
    async fn spend_rows(&self, team_id: &str) -> Vec<Value> {
        let now = spend_log_window();
        let path = format!(
            "/spend/logs/v2?start_date={}&end_date={}&page_size=1000&team_id={team_id}",
            now.0, now.1
        );
        let (status, page) = self.get(&path).await;
        assert_eq!(status, 200, "{page}");
        page["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["team_id"] == team_id)
            .collect()
    }
}

/// Yesterday's and tomorrow's midnight, UTC, as LiteLLM's query wants them.
fn spend_log_window() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = |d: i64| {
        let (y, m, dd) = litellm::double::civil_from_days(d);
        format!("{y:04}-{m:02}-{dd:02}%2000:00:00")
    };
    (day(secs / 86_400 - 1), day(secs / 86_400 + 1))
}

fn kind(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or_default()
}

/// Polls `check` every 250 ms for up to `secs`; LiteLLM writes spend and caches auth late.
async fn eventually<T>(secs: u64, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn no_default_models_denies_every_model_while_an_empty_list_allows_all() {
    let t = target().await;
    let (_, key) = t.team(json!({"models": ["no-default-models"]})).await;
    for model in MODELS {
        let (status, _, body) = t.chat(&key, json!({"model": model})).await;
        assert_eq!(
            (status, kind(&body)),
            (403, "team_model_access_denied"),
            "{body}"
        );
    }
    let listed = t
        .http
        .get(format!("{}/v1/models", t.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "{listed}");
    // The hole this closes: `models: []` means every model.
    let (_, key) = t.team(json!({"models": []})).await;
    assert_eq!(t.chat(&key, json!({"model": "fake-gpt-2"})).await.0, 200);
}

#[tokio::test]
async fn key_and_team_model_denials_are_told_apart() {
    let t = target().await;
    let (_, key) = t
        .team_with_key(
            json!({"models": ["fake-gpt"]}),
            json!({"models": ["fake-gpt-2"]}),
        )
        .await;
    let (status, _, body) = t.chat(&key, json!({})).await;
    assert_eq!(
        (status, kind(&body)),
        (403, "key_model_access_denied"),
        "{body}"
    );
    let (_, key) = t.team(json!({"models": ["fake-gpt-2"]})).await;
    let (status, _, body) = t.chat(&key, json!({})).await;
    assert_eq!(
        (status, kind(&body)),
        (403, "team_model_access_denied"),
        "{body}"
    );
}

#[tokio::test]
async fn a_spent_team_budget_is_refused_with_422_budget_exceeded() {
    let t = target().await;
    // One call costs more than the whole budget (LiteLLM admits it: the check is before the
    // call), and its reservation counts at once, before its spend is written.
    let (team_id, key) = t
        .team(json!({"models": ["fake-gpt"], "max_budget": 0.03}))
        .await;
    assert_eq!(t.chat(&key, json!({"max_tokens": 20})).await.0, 200);
    let (status, _, body) = t.chat(&key, json!({"max_tokens": 1})).await;
    assert_eq!((status, kind(&body)), (422, "budget_exceeded"), "{body}");
    // The refusal is logged as a failure row at zero spend, like the success, late.
    let rows = eventually(40, async || {
        let rows = t.spend_rows(&team_id).await;
        (rows.len() >= 2).then_some(rows)
    })
    .await
    .expect("spend rows were never written");
    let status_of = |r: &Value| {
        r["status"]
            .as_str()
            .or(r["metadata"]["status"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let failure = rows.iter().find(|r| status_of(r) == "failure").unwrap();
    assert_eq!(failure["spend"].as_f64(), Some(0.0), "{failure}");
    let success = rows.iter().find(|r| status_of(r) == "success").unwrap();
    assert!(success["spend"].as_f64().unwrap() > 0.03, "{success}");
}

#[tokio::test]
async fn spend_rows_are_written_after_the_answer_not_with_it() {
    let t = target().await;
    let (team_id, key) = t.team(json!({"models": ["fake-gpt"]})).await;
    let (status, _, answer) = t.chat(&key, json!({})).await;
    assert_eq!(status, 200);
    let id = answer["id"].as_str().unwrap().to_owned();
    assert!(
        t.spend_rows(&team_id).await.is_empty(),
        "the spend row was there as the answer came"
    );
    let row = eventually(40, async || {
        t.spend_rows(&team_id)
            .await
            .into_iter()
            .find(|r| r["request_id"] == id.as_str())
    })
    .await
    .expect("the spend row never came");
    // Billed in full by the upstream: every one of the 10 tokens asked for.
    assert_eq!(row["completion_tokens"], 10, "{row}");
}

#[tokio::test]
async fn rate_limits_refuse_with_429_throttling_error_and_retry_after() {
    let t = target().await;
    let (_, key) = t
        .team(json!({"models": ["fake-gpt"], "rpm_limit": 2}))
        .await;
    assert_eq!(t.chat(&key, json!({})).await.0, 200);
    assert_eq!(t.chat(&key, json!({})).await.0, 200);
    let (status, retry, body) = t.chat(&key, json!({})).await;
    assert_eq!((status, kind(&body)), (429, "throttling_error"), "{body}");
    assert_eq!(retry.as_deref(), Some("60"));
    // TPM counts a request's output limit before it runs: one call asking for more than the
    // minute's tokens is refused outright, and n multiplies it.
    let (_, key) = t
        .team(json!({"models": ["fake-gpt"], "tpm_limit": 50}))
        .await;
    let (status, retry, body) = t.chat(&key, json!({"max_tokens": 100})).await;
    assert_eq!((status, kind(&body)), (429, "throttling_error"), "{body}");
    assert_eq!(retry.as_deref(), Some("60"));
    let (status, _, body) = t.chat(&key, json!({"max_tokens": 10, "n": 8})).await;
    assert_eq!((status, kind(&body)), (429, "throttling_error"), "{body}");
    assert_eq!(t.chat(&key, json!({"max_tokens": 10})).await.0, 200);
}

#[tokio::test]
async fn blocked_expired_and_deleted_keys_are_refused_with_401() {
    let t = target().await;
    let (_, key) = t.team(json!({"models": ["fake-gpt"]})).await;
    let (status, _) = t.admin("/key/block", json!({"key": key})).await;
    assert_eq!(status, 200);
    let (status, _, body) = t.chat(&key, json!({})).await;
    assert_eq!((status, kind(&body)), (401, "auth_error"), "{body}");

    let (_, key) = t
        .team_with_key(json!({"models": ["fake-gpt"]}), json!({"duration": "2s"}))
        .await;
    assert_eq!(t.chat(&key, json!({})).await.0, 200);
    let refused = eventually(10, async || {
        let (status, _, body) = t.chat(&key, json!({})).await;
        (status != 200).then_some((status, body))
    })
    .await
    .expect("an expired key kept working");
    assert_eq!(
        (refused.0, kind(&refused.1)),
        (401, "expired_key"),
        "{}",
        refused.1
    );

    // Deleted: requests are refused at once, while `/key/info` still answers from its cache;
    // the team's own listing (which the reconciler reads) leaves the key out at once.
    let (team, key) = t.team(json!({"models": ["fake-gpt"]})).await;
    assert_eq!(t.chat(&key, json!({})).await.0, 200);
    let hash = litellm::key_hash(&key);
    let (status, _) = t.admin("/key/delete", json!({"keys": [hash]})).await;
    assert_eq!(status, 200);
    let (status, _, body) = t.chat(&key, json!({})).await;
    assert_eq!(
        (status, kind(&body)),
        (401, "token_not_found_in_db"),
        "{body}"
    );
    let (status, info) = t.get(&format!("/key/info?key={hash}")).await;
    assert_eq!(status, 200, "{info}");
    let (status, info) = t.get(&format!("/team/info?team_id={team}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["keys"], json!([]), "{info}");
}

#[tokio::test]
async fn a_team_lists_its_own_keys_and_deleting_it_deletes_them() {
    let t = target().await;
    let (team, key) = t.team(json!({"models": ["fake-gpt"]})).await;
    let (other, other_key) = t.team(json!({"models": ["fake-gpt"]})).await;
    let (status, info) = t.get(&format!("/team/info?team_id={team}")).await;
    assert_eq!(status, 200, "{info}");
    let tokens: Vec<&str> = info["keys"]
        .as_array()
        .expect("/team/info lists the team's keys")
        .iter()
        .filter_map(|k| k["token"].as_str())
        .collect();
    assert_eq!(tokens, [litellm::key_hash(&key).as_str()], "{info}");

    let (status, body) = t.admin("/team/delete", json!({"team_ids": [team]})).await;
    assert_eq!(status, 200, "{body}");
    let refused = eventually(10, async || {
        let (status, _, body) = t.chat(&key, json!({})).await;
        (status != 200).then_some((status, body))
    })
    .await
    .expect("a deleted team's key kept working");
    assert_eq!(refused.0, 401, "{}", refused.1);
    // The other team and its key are untouched.
    assert_eq!(t.chat(&other_key, json!({})).await.0, 200);
    let (status, info) = t.get(&format!("/team/info?team_id={other}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["keys"].as_array().map(Vec::len), Some(1), "{info}");
}

#[tokio::test]
async fn request_validation_errors_have_fastapis_shape() {
    let t = target().await;
    let (status, body) = t
        .admin("/team/new", json!({"team_id": 123, "max_budget": "abc"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["loc"][1])
        .collect();
    assert!(fields.contains(&&json!("max_budget")), "{body}");
    assert!(fields.contains(&&json!("team_id")), "{body}");
}

/// saas-api sends each gateway call with its own call id and records it under that id; this
/// is what makes that work: LiteLLM takes a caller's `x-litellm-call-id` as given, answers with
/// it, and files it in the spend row (top level and metadata) beside the provider's response
/// id, the row's `request_id`. A response id the provider repeats keeps ONE row (the first),
/// though both calls are served and billed; a refused call ignores the caller's call id.
#[tokio::test]
async fn a_callers_call_id_is_kept_beside_the_providers_response_id() {
    let t = target().await;
    let (team_id, key) = t.team(json!({"models": ["fake-gpt"]})).await;
    let repeated = unique("chatcmpl-repeated").replace('-', "_");
    let content = format!("[id:{repeated}]");
    let first = unique("call-a");
    let second = unique("call-b");
    let served = eventually(20, async || {
        let (status, echoed, answer) = t.chat_as(&key, &first, &content, "fake-gpt").await;
        (status == 200).then_some((echoed, answer))
    })
    .await
    .expect("the team's key never worked");
    assert_eq!(served.0, first, "the call id is answered as given");
    assert_eq!(served.1["id"], repeated.as_str(), "{}", served.1);
    let (status, echoed, answer) = t.chat_as(&key, &second, &content, "fake-gpt").await;
    assert_eq!(
        (status, echoed.as_str()),
        (200, second.as_str()),
        "{answer}"
    );
    assert_eq!(answer["id"], repeated.as_str());
    let refused = unique("call-refused");
    let (status, echoed, answer) = t.chat_as(&key, &refused, "hi", "fake-gpt-2").await;
    assert_eq!((status, echoed.as_str()), (403, ""), "{answer}");

    // Both calls' spend reaches the team's counter; the refusal's row comes with them.
    let rows = eventually(40, async || {
        let (_, info) = t.get(&format!("/team/info?team_id={team_id}")).await;
        let rows = t.spend_rows(&team_id).await;
        let one_call = rows
            .iter()
            .find(|r| r["status"] == "success")
            .and_then(|r| r["spend"].as_f64())?;
        let team_spend = info["team_info"]["spend"].as_f64()?;
        let both = (team_spend - 2.0 * one_call).abs() < 1e-9 && one_call > 0.0;
        (both && rows.len() == 2).then_some(rows)
    })
    .await
    .expect("the spend of both calls and the refusal's row never came");
    let row = rows
        .iter()
        .find(|r| r["status"] == "success")
        .expect("a row of a served call");
    assert_eq!(row["litellm_call_id"], first.as_str(), "{row}");
    assert_eq!(row["request_id"], repeated.as_str(), "{row}");
    assert_eq!(row["metadata"]["litellm_call_id"], first.as_str(), "{row}");
    let failure = rows.iter().find(|r| r["status"] == "failure").unwrap();
    assert_ne!(failure["litellm_call_id"], refused.as_str(), "{failure}");
    assert_eq!(
        failure["request_id"], failure["litellm_call_id"],
        "{failure}"
    );
}

/// Why saas-api does not mirror its organizations at LiteLLM: without an Enterprise license the
/// proxy refuses every organization route (403), and a team named into an organization that
/// does not exist there is refused (400). Teams are created without an organization.
#[tokio::test]
async fn organizations_need_an_enterprise_license() {
    let t = target().await;
    let (status, body) = t
        .admin(
            "/organization/new",
            json!({"organization_alias": unique("org"), "models": []}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("only available for LiteLLM Enterprise users"),
        "{body}"
    );
    let (status, body) = t.get("/organization/list").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = t
        .admin(
            "/team/new",
            json!({"team_id": unique("team"), "organization_id": unique("org")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Organization not found"),
        "{body}"
    );
}

/// What a gateway for embeddings will rest on: LiteLLM serves `/v1/embeddings` with a team's key,
/// bills the input only (at the model's input price, answered in `x-litellm-response-cost`),
/// answers the caller's call id, and files the spend row under that call id (an embedding has
/// no response id) with `call_type` `aembedding`. A model outside the team's list is refused.
#[tokio::test]
async fn embeddings_bill_their_input_under_the_callers_call_id() {
    let t = target().await;
    let (team_id, key) = t.team(json!({"models": [EMBEDDING_MODEL]})).await;
    let call_id = unique("embed");
    let embed = |input: Value, call_id: String| {
        let body = json!({"model": EMBEDDING_MODEL, "input": input});
        let (t, key) = (&t, &key);
        async move {
            let (status, echoed, cost, text) = call(t, key, "/v1/embeddings", &call_id, body).await;
            let answer = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
            (status, cost, echoed, answer)
        }
    };
    // Four and six bytes: ten tokens.
    let (status, cost, echoed, answer) = eventually(20, async || {
        let answer = embed(json!(["abcd", "efghij"]), call_id.clone()).await;
        (answer.0 == 200).then_some(answer)
    })
    .await
    .expect("the team's key never worked for embeddings");
    assert_eq!(status, 200);
    assert_eq!(echoed, call_id);
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2), "{answer}");
    assert_eq!(answer["usage"]["prompt_tokens"], 10, "{answer}");
    assert!((cost - 0.01).abs() < 1e-12, "cost {cost}");
    // Token arrays count their entries.
    let (status, _, _, answer) = embed(json!([[1, 2, 3], [4, 5]]), unique("embed")).await;
    assert_eq!(
        (status, &answer["usage"]["prompt_tokens"]),
        (200, &json!(5)),
        "{answer}"
    );
    // A team of the embedding model alone reaches no chat model.
    let (status, _, answer) = t.chat(&key, json!({"model": MODELS[0]})).await;
    assert_eq!(status, 403, "{answer}");

    let row = t
        .spend_row_of_call(&team_id, &call_id, "the embedding's")
        .await;
    assert_eq!(row["request_id"], call_id.as_str(), "{row}");
    assert_eq!(row["call_type"], "aembedding", "{row}");
    assert_eq!(row["prompt_tokens"], 10, "{row}");
    assert_eq!(row["completion_tokens"], 0, "{row}");
}

/// A caller's POST of `body` to `path` with `x-litellm-call-id`: (status, the call id answered,
/// `x-litellm-response-cost`, the body as text).
async fn call(
    t: &Target,
    key: &str,
    path: &str,
    call_id: &str,
    body: Value,
) -> (u16, String, f64, String) {
    let response = t
        .http
        .post(format!("{}{path}", t.url))
        .bearer_auth(key)
        .header("x-litellm-call-id", call_id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (echoed, cost) = (
        header("x-litellm-call-id"),
        header("x-litellm-response-cost"),
    );
    let status = response.status().as_u16();
    (
        status,
        echoed,
        cost.parse().unwrap_or(-1.0),
        response.text().await.unwrap(),
    )
}

/// What the gateway's `/v1/completions` rests on: LiteLLM passes `n` and `best_of` through and
/// bills every generated completion (each prompt's `best_of`, each its whole `max_tokens`), as a
/// provider does; a stream asked for usage ends with it; the caller's call id is answered and
/// names the spend row.
#[tokio::test]
async fn legacy_completions_bill_every_prompts_best_of_under_the_callers_call_id() {
    let t = target().await;
    let (team_id, key) = t.team(json!({"models": [MODELS[0]]})).await;
    let call_id = unique("cmpl");
    let body =
        json!({"model": MODELS[0], "prompt": ["ab", "cd"], "max_tokens": 3, "n": 2, "best_of": 3});
    let (status, echoed, cost, text) = eventually(20, async || {
        let answer = call(&t, &key, "/v1/completions", &call_id, body.clone()).await;
        (answer.0 == 200).then_some(answer)
    })
    .await
    .expect("the team's key never worked for completions");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, echoed.as_str()), (200, call_id.as_str()));
    // Two prompts × best_of 3 × 3 tokens are billed; two prompts × n 2 are returned.
    assert_eq!(answer["usage"]["completion_tokens"], 18, "{answer}");
    assert_eq!(answer["usage"]["prompt_tokens"], 4, "{answer}");
    assert_eq!(
        answer["choices"].as_array().map(Vec::len),
        Some(4),
        "{answer}"
    );
    assert!(
        (cost - (4.0 * 0.001 + 18.0 * 0.002)).abs() < 1e-9,
        "cost {cost}"
    );

    let streamed = json!({"model": MODELS[0], "prompt": "ab", "max_tokens": 3, "stream": true,
                          "stream_options": {"include_usage": true}});
    let (status, _, _, text) = call(&t, &key, "/v1/completions", &unique("cmpl"), streamed).await;
    assert_eq!(status, 200, "{text}");
    let usage = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|chunk| chunk["usage"].is_object())
        .unwrap_or_else(|| panic!("no usage chunk in {text}"));
    assert_eq!(usage["usage"]["completion_tokens"], 3, "{usage}");
    assert!(text.contains("\"text\""), "{text}");

    let row = t
        .spend_row_of_call(&team_id, &call_id, "the completion's")
        .await;
    assert_eq!(row["completion_tokens"], 18, "{row}");
    assert_eq!(row["call_type"], "atext_completion", "{row}");
}

/// What the gateway's `/v1/messages` rests on: LiteLLM serves Anthropic's messages API for an
/// OpenAI-compatible model (with `use_chat_completions_url_for_anthropic_messages`), answers in
/// Anthropic's shape with `input_tokens`/`output_tokens`, bills the whole `max_tokens`, ends a
/// stream with a `message_delta` that carries both counts, and answers the caller's call id.
#[tokio::test]
async fn anthropic_messages_are_billed_in_their_own_shape_under_the_callers_call_id() {
    let t = target().await;
    let (team_id, key) = t.team(json!({"models": [MODELS[0]]})).await;
    let call_id = unique("msg");
    let body = json!({"model": MODELS[0], "max_tokens": 5,
                      "messages": [{"role": "user", "content": "hello"}]});
    let (status, echoed, cost, text) = eventually(20, async || {
        let answer = call(&t, &key, "/v1/messages", &call_id, body.clone()).await;
        (answer.0 == 200).then_some(answer)
    })
    .await
    .expect("the team's key never worked for messages");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, echoed.as_str()), (200, call_id.as_str()));
    assert_eq!(answer["type"], "message", "{answer}");
    assert_eq!(answer["usage"]["output_tokens"], 5, "{answer}");
    let input = answer["usage"]["input_tokens"].as_u64().unwrap();
    assert!(input > 0, "{answer}");
    assert!(
        (cost - (input as f64 * 0.001 + 5.0 * 0.002)).abs() < 1e-9,
        "cost {cost}"
    );

    let streamed = json!({"model": MODELS[0], "max_tokens": 5, "stream": true,
                          "messages": [{"role": "user", "content": "hello"}]});
    let (status, _, _, text) = call(&t, &key, "/v1/messages", &unique("msg"), streamed).await;
    assert_eq!(status, 200, "{text}");
    let delta = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|event| event["type"] == "message_delta")
        .unwrap_or_else(|| panic!("no message_delta in {text}"));
    assert_eq!(delta["usage"]["output_tokens"], 5, "{delta}");
    assert_eq!(delta["usage"]["input_tokens"], input, "{delta}");

    let row = t
        .spend_row_of_call(&team_id, &call_id, "the message's")
        .await;
    assert_eq!(row["completion_tokens"], 5, "{row}");
    assert_eq!(row["call_type"], "anthropic_messages", "{row}");
}
