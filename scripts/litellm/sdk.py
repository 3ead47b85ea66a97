#!/usr/bin/env python3
"""The official OpenAI and Anthropic Python SDKs pointed at saas-api, with a team's virtual key,
against the real LiteLLM proxy: what a customer's app does. OpenAI's chat (plain and streamed),
legacy completions (plain and streamed), embeddings and models; Anthropic's messages (plain and
streamed); every call recorded once, refusals as each SDK's typed errors with our codes. Run by
scripts/e2e-litellm (which installs both SDKs into their own venv) after e2e.py, with API,
LITELLM and ADMIN_KEY set.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

import anthropic
import openai

API = os.environ["API"]
ADMIN = {"X-Admin-Key": os.environ["ADMIN_KEY"], "Content-Type": "application/json"}
RUN = f"{int(time.time())}_{os.getpid()}"


def fail(message):
    print(f"SDK FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def admin(method, path, body=None, headers=None):
    request = urllib.request.Request(API + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    for name, value in {**ADMIN, **(headers or {})}.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        fail(f"{method} {path} -> {error.code} {error.read()[:300]!r}")


def eventually(what, check, timeout=40):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        done, last = check()
        if done:
            return last
        time.sleep(0.5)
    fail(f"{what}: {last}")


def team(team_id, credits):
    created = admin("POST", "/api/teams/create", {"organization_id": ORG, "team_id": team_id,
                                                  "model_groups": [GROUP], "credits": credits,
                                                  "budget_mode": "hard"})
    def synced():
        state = admin("GET", f"/api/teams/{team_id}", headers={"X-Wait-For-Position": str(created["position"])})
        sync = state["litellm_sync"]
        return sync.get("status") == "in_sync" and (sync.get("synced_position") or 0) >= created["position"], sync
    eventually(f"{team_id} in sync with LiteLLM", synced)
    return created["virtual_key"]


ORG = f"org_sdk_{RUN}"
GROUP = f"sdk_{RUN}"
admin("POST", "/api/organizations/create", {"organization_id": ORG, "name": "SDK"})
admin("POST", "/api/model-groups/create", {"group_name": GROUP, "models": ["fake-gpt", "fake-embed"]})
key = team(f"team_sdk_{RUN}", 50)
client = openai.OpenAI(base_url=API + "/v1", api_key=key, max_retries=0)
hello = [{"role": "user", "content": "hi"}]


def first_call():
    try:
        return True, client.chat.completions.create(model="fake-gpt", messages=hello, max_tokens=10)
    except openai.APIStatusError as error:
        return False, (error.status_code, str(error)[:200])


answer = eventually("a chat completion through saas-api with the SDK", first_call)
if answer.usage.completion_tokens != 10 or not answer.choices[0].message.content:
    fail(f"plain answer: {answer}")
print(f"ok   openai {openai.__version__}: chat.completions.create through saas-api ({answer.usage.total_tokens} tokens)")

models = sorted(m.id for m in client.models.list())
if models != ["fake-embed", "fake-gpt"]:
    fail(f"models.list() = {models}")
print("ok   models.list() lists the team's models")

raw = client.chat.completions.with_raw_response.create(model="fake-gpt", messages=hello, max_tokens=10, stream=True)
chunks = list(raw.parse())
usage = [c.usage for c in chunks if c.usage]
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
if len(usage) != 1 or usage[0].completion_tokens != 10 or not text:
    fail(f"stream: {len(chunks)} chunks, usage {usage}, text {text[:40]!r}")
if any(name.lower() == "x-litellm-call-id" for name in raw.headers):
    fail("the gateway's call id reached the client")
print(f"ok   a streamed completion arrives in {len(chunks)} chunks with its usage (asked for by saas-api)")

# Legacy completions: two prompts, best_of 3 of which n 2 are returned; all 18 tokens billed.
done = client.completions.create(model="fake-gpt", prompt=["ab", "cd"], max_tokens=3, n=2, best_of=3)
if len(done.choices) != 4 or done.usage.completion_tokens != 18:
    fail(f"completions: {done}")
chunks = list(client.completions.create(model="fake-gpt", prompt="ab", max_tokens=3, stream=True))
usage = [c.usage for c in chunks if c.usage]
if len(usage) != 1 or usage[0].completion_tokens != 3 or not "".join(c.choices[0].text or "" for c in chunks if c.choices):
    fail(f"completions stream: {len(chunks)} chunks, usage {usage}")
print("ok   completions.create plain (every prompt's best_of billed) and streamed (with its usage)")

vectors = client.embeddings.create(model="fake-embed", input=["abcd", "efghij"])
if len(vectors.data) != 2 or vectors.usage.prompt_tokens != 10 or len(vectors.data[0].embedding) != 8:
    fail(f"embeddings: {vectors}")
print("ok   embeddings.create (the SDK's base64 encoding included)")

# Anthropic's SDK: its base URL is saas-api itself, the key goes as x-api-key.
claude = anthropic.Anthropic(base_url=API, api_key=key, max_retries=0)
message = claude.messages.create(model="fake-gpt", max_tokens=7, messages=hello)
if message.usage.output_tokens != 7 or not message.content[0].text:
    fail(f"messages: {message}")
with claude.messages.stream(model="fake-gpt", max_tokens=7, messages=hello) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
if final.usage.output_tokens != 7 or not text:
    fail(f"messages stream: {final} {text[:40]!r}")
print(f"ok   anthropic {anthropic.__version__}: messages.create and messages.stream through saas-api")

def recorded():
    usage = admin("GET", f"/api/teams/team_sdk_{RUN}/usage")
    return usage["request_count"] == 7, usage
usage = eventually("all seven SDK calls in the team's usage", recorded, timeout=60)
# LiteLLM's own counters agree with what we recorded: nothing twice, nothing missed.
def agreed():
    usage = admin("GET", f"/api/teams/team_sdk_{RUN}/usage")
    report = admin("GET", f"/api/teams/team_sdk_{RUN}/reconciliation")
    return usage["request_count"] == 7 and report["in_agreement"], (usage["request_count"], report)
eventually("LiteLLM's spend of the SDK's calls agrees with ours", agreed, timeout=90)
print("ok   all seven calls recorded once each, and LiteLLM agrees")

# Refusals arrive as the SDK's typed errors, with our error codes.
expectations = [
    (lambda: client.chat.completions.create(model="fake-gpt-2", messages=hello, max_tokens=5),
     openai.PermissionDeniedError, "model_not_allowed"),
    (lambda: openai.OpenAI(base_url=API + "/v1", api_key="sk-not-a-key-of-ours-at-all-000000000000000",
                           max_retries=0).chat.completions.create(model="fake-gpt", messages=hello),
     openai.AuthenticationError, "unauthorized"),
    (lambda: client.chat.completions.create(model="fake-gpt", messages=hello, max_tokens=100000),
     openai.RateLimitError, "budget_exceeded"),
]
for call, kind, code in expectations:
    try:
        call()
        fail(f"expected {kind.__name__}")
    except kind as error:
        if (error.body or {}).get("code") != code:
            fail(f"{kind.__name__} with body {error.body}")
print("ok   refusals are the SDK's PermissionDeniedError, AuthenticationError and RateLimitError with our codes")
for call, kind, code in [
    (lambda: claude.messages.create(model="fake-gpt-2", max_tokens=5, messages=hello),
     anthropic.PermissionDeniedError, "model_not_allowed"),
    (lambda: claude.messages.create(model="fake-gpt", max_tokens=100000, messages=hello, stream=True),
     anthropic.RateLimitError, "budget_exceeded"),
]:
    try:
        call()
        fail(f"expected {kind.__name__}")
    except kind as error:
        if (error.body or {}).get("error", {}).get("code") != code:
            fail(f"{kind.__name__} with body {error.body}")
print("ok   and Anthropic's PermissionDeniedError and RateLimitError with our codes")
budget = admin("GET", f"/api/teams/team_sdk_{RUN}/budget")
if Decimal(str(budget["spend"])) > Decimal(50):
    fail(f"spent past the credits: {budget}")
print("sdk: all checks passed")
