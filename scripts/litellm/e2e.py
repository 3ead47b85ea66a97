#!/usr/bin/env python3
"""End-to-end checks against the real LiteLLM proxy: what saas-api decides, LiteLLM enforces.

Driven by scripts/e2e-litellm, which starts LiteLLM, a fake upstream and saas-api on loopback.
Every wait is bounded; LiteLLM caches auth objects for up to ~10 s, so outcomes are polled.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

API = os.environ["API"]
LITELLM = os.environ["LITELLM"]
ADMIN = {"X-Admin-Key": os.environ["ADMIN_KEY"]}


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, {"raw": raw.decode(errors="replace")[:200]}


def admin(method, path, body=None, headers=None):
    status, answer = call(method, API + path, body, {**ADMIN, **(headers or {})})
    if status >= 300:
        fail(f"{method} {path} -> {status} {answer}")
    return answer


def chat(key, model):
    """A chat completion straight to LiteLLM with the team's key; (status, error type)."""
    status, answer = call("POST", LITELLM + "/v1/chat/completions",
                          {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
                          {"Authorization": "Bearer " + key})
    kind = (answer or {}).get("error", {}).get("type") if isinstance(answer, dict) else None
    return status, kind


def fail(message):
    print("E2E FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def eventually(what, check, timeout=40):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = check()
        if ok:
            print(f"ok   {what}")
            return
        time.sleep(0.5)
    fail(f"{what}: last outcome {last}")


def wait_in_sync(team_id, position):
    def check():
        team = admin("GET", f"/api/teams/{team_id}", headers={"X-Wait-For-Position": str(position)})
        sync = team.get("litellm_sync", {})
        return sync.get("status") == "in_sync" and (sync.get("synced_position") or 0) >= position, sync
    eventually(f"{team_id} in sync at {position}", check, timeout=30)


def expect_chat(what, key, model, want_status, want_kind=None):
    def check():
        status, kind = chat(key, model)
        return status == want_status and (want_kind is None or kind in want_kind), (status, kind)
    eventually(what, check)


admin("POST", "/api/organizations/create", {"organization_id": "org_e2e", "name": "E2E"})
admin("POST", "/api/model-groups/create", {"group_name": "basic", "models": ["fake-gpt"]})
admin("POST", "/api/model-groups/create", {"group_name": "extra", "models": ["fake-gpt-2"]})
team = admin("POST", "/api/teams/create", {"organization_id": "org_e2e", "team_id": "team_e2e", "team_alias": "E2E",
                                           "model_groups": ["basic"], "credits": 1000, "budget_mode": "hard"})
key = team["virtual_key"]
wait_in_sync("team_e2e", team["position"])

expect_chat("the team's key makes a chat completion", key, "fake-gpt", 200)
expect_chat("a model outside its groups is refused", key, "fake-gpt-2", 403,
            {"team_model_access_denied", "key_model_access_denied"})

moved = admin("POST", "/api/teams/team_e2e/model-groups/assign", {"group_name": "extra"})
wait_in_sync("team_e2e", moved["position"])
expect_chat("an assigned group's model works with the same key", key, "fake-gpt-2", 200)

moved = admin("POST", "/api/teams/team_e2e/suspend", {"reason": "e2e"})
wait_in_sync("team_e2e", moved["position"])
expect_chat("a suspended team's key is refused", key, "fake-gpt", 401)

moved = admin("POST", "/api/teams/team_e2e/resume")
wait_in_sync("team_e2e", moved["position"])
expect_chat("a resumed team's key works again", key, "fake-gpt", 200)

rotated = admin("POST", "/api/teams/team_e2e/rotate-key")
wait_in_sync("team_e2e", rotated["position"])
expect_chat("the rotated key works", rotated["virtual_key"], "fake-gpt", 200)
expect_chat("the old key is refused", key, "fake-gpt", 401)

small = admin("POST", "/api/teams/create", {"organization_id": "org_e2e", "team_id": "team_small", "team_alias": "Small",
                                            "model_groups": ["basic"], "credits": 1, "budget_mode": "hard"})
wait_in_sync("team_small", small["position"])
# Each fake completion costs 2.00 USD (1000 prompt + 500 completion tokens): one call spends it all.
chat(small["virtual_key"], "fake-gpt")
expect_chat("a hard budget exhausted is refused by LiteLLM", small["virtual_key"], "fake-gpt", 422, {"budget_exceeded"})

gone = admin("POST", "/api/teams/team_small/delete")
wait_in_sync("team_small", gone["position"])
expect_chat("a deleted team's key stops working", small["virtual_key"], "fake-gpt", 401)

# --- Usage: direct traffic reaches our ledger once, at LiteLLM's cost (pushed and pulled).
def chat_cost(key, model):
    """A completion straight to LiteLLM; (response id, LiteLLM's cost header)."""
    request = urllib.request.Request(LITELLM + "/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": model, "max_tokens": 10,
                                                      "messages": [{"role": "user", "content": "hi"}]}).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
        return body["id"], Decimal(response.headers["x-litellm-response-cost"])


# A fresh team id: LiteLLM's database outlives runs and keeps each team's spend.
usage_team = f"team_usage_{int(time.time())}"
paying = admin("POST", "/api/teams/create", {"organization_id": "org_e2e", "team_id": usage_team, "team_alias": "Usage",
                                             "model_groups": ["basic"], "credits": 100, "markup_percent": 50})
wait_in_sync(usage_team, paying["position"])
calls = []
def first_call():
    try:
        calls.append(chat_cost(paying["virtual_key"], "fake-gpt"))
        return True, None
    except urllib.error.HTTPError as error:
        return False, error.code
eventually("the usage team's key works", first_call)
calls += [chat_cost(paying["virtual_key"], "fake-gpt") for _ in range(2)]
cost = sum(c for _, c in calls)

def usage_matches():
    usage = admin("GET", f"/api/teams/{usage_team}/usage")
    return usage["request_count"] == 3 and Decimal(str(usage["provider_cost"])) == cost, usage
eventually("direct requests appear in the team's usage at LiteLLM's cost", usage_matches, timeout=90)

def litellm_agrees():
    report = admin("GET", f"/api/teams/{usage_team}/reconciliation")
    return report["in_agreement"], report
eventually("LiteLLM's own spend counters agree with our ledger", litellm_agrees, timeout=90)

# By now the spend logs have been pulled too (they are written with the counters): still once.
time.sleep(6)
usage = admin("GET", f"/api/teams/{usage_team}/usage")
if usage["request_count"] != 3 or Decimal(str(usage["total_spend"])) != cost * Decimal("1.5"):
    fail(f"usage counted more than once or mispriced: {usage}")
print("ok   counted exactly once, priced at cost x 1.5")
request = urllib.request.Request(API + f"/api/usage/records.csv?team_id={usage_team}", headers=ADMIN)
with urllib.request.urlopen(request, timeout=30) as response:
    exported = response.read().decode()
rows = [line.split(",") for line in exported.splitlines()[1:]]
ids = {row[0] for row in rows}
sources = sorted(row[-1] for row in rows)
if ids != {i for i, _ in calls}:
    fail(f"CSV export holds {ids}, expected the response ids {[i for i, _ in calls]}")
print("ok   the CSV export lists LiteLLM's request ids")
# Both paths saw the requests (push and pull race); whichever came second changed nothing.
if not set(sources) <= {"push", "spend_logs"}:
    fail(f"unexpected sources {sources}")
def pushed():
    cursors = {c["source"]: c for c in admin("GET", "/api/usage/ingestion")["cursors"]}
    push = cursors.get("litellm_push", {})
    return push.get("rows_seen", 0) >= len(calls) and push.get("invalid") == 0, cursors
eventually("LiteLLM's generic_api push reaches saas-api", pushed, timeout=30)
print(f"ok   recorded by {sources}; the other path's copies changed nothing")

# --- The request path: an OpenAI-compatible client pointed at saas-api.
def gateway(key, body):
    """POST /v1/chat/completions on saas-api with a team key; (status, raw body text)."""
    request = urllib.request.Request(API + "/v1/chat/completions", method="POST", data=json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


gw_team = f"team_gw_{int(time.time())}"
gw = admin("POST", "/api/teams/create", {"organization_id": "org_e2e", "team_id": gw_team, "team_alias": "Gateway",
                                         "model_groups": ["basic"], "credits": 5, "budget_mode": "hard"})
wait_in_sync(gw_team, gw["position"])
hello = {"model": "fake-gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
def first_gateway_call():
    status, text = gateway(gw["virtual_key"], hello)
    return status == 200, (status, text[:200])
eventually("an OpenAI-compatible call through saas-api succeeds", first_gateway_call)
status, streamed = gateway(gw["virtual_key"], {**hello, "stream": True})
if status != 200 or "data: [DONE]" not in streamed or '"usage"' not in streamed:
    fail(f"streamed call through saas-api: {status} {streamed[:300]}")
print("ok   a streamed call through saas-api arrives whole, with its usage chunk")
# LiteLLM's prices for fake-gpt: 1000 + 500 tokens = 2.00; the stream's 10 + 3 tokens = 0.016.
expected = Decimal("2.016")
def gateway_usage():
    usage = admin("GET", f"/api/teams/{gw_team}/usage")
    return usage["request_count"] == 2 and Decimal(str(usage["provider_cost"])) == expected, usage
eventually("both calls are recorded at LiteLLM's cost", gateway_usage, timeout=30)
def gateway_agrees():
    report = admin("GET", f"/api/teams/{gw_team}/reconciliation")
    return report["in_agreement"], report
eventually("LiteLLM's counters agree (its push and pull of the same calls changed nothing)", gateway_agrees, timeout=90)
usage = admin("GET", f"/api/teams/{gw_team}/usage")
if usage["request_count"] != 2:
    fail(f"gateway calls counted more than once: {usage}")
print("ok   recorded exactly once")
outcomes = []
for _ in range(6):
    status, text = gateway(gw["virtual_key"], hello)
    outcomes.append(status)
    if status == 429:
        if json.loads(text)["error"]["code"] != "budget_exceeded":
            fail(f"429 without budget_exceeded: {text}")
        break
if outcomes[-1] != 429:
    fail(f"a team whose credits ran out was still served: {outcomes}")
print(f"ok   a team whose credits run out gets 429 budget_exceeded (statuses {outcomes})")

print("e2e: all LiteLLM checks passed")
