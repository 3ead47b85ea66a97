#!/usr/bin/env python3
"""LiteLLM sync throughput: how fast saas-api brings N already-created teams into LiteLLM.

Phase 1 creates N teams with sync disabled (no LITELLM_MASTER_KEY). Phase 2 restarts saas-api
with LiteLLM configured and times, from outside the process, how long until /api/sync/status
reports all N in sync. Phase 3 changes every team once (credits added, so LiteLLM's budget must
follow) and times from the first change until all N are in sync again: the steady state, where
each team and its key are already in LiteLLM. Also records saas-api's peak memory (VmHWM).
Usage: sync_bench.py TARGET N   (TARGET: double | real)
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

target, n = sys.argv[1], int(sys.argv[2])
BIN = os.environ.get("BENCH_SAAS_API", "target/release/saas-api")
DOUBLE_BIN = "target/release/litellm-double"
PORT = 18113
API = f"http://127.0.0.1:{PORT}"
MASTER = "mk-bench-" + os.urandom(12).hex()
DB = f"bench_sync_{int(time.time())}"
ENV = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}", "MASTER_KEY": MASTER,
       "ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(), "PORT": str(PORT), "RUST_LOG": "warn"}


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(API + path, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers={"X-Admin-Key": MASTER, "Content-Type": "application/json",
                                                             **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start(env):
    process = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(API + "/health", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("saas-api did not start")


def peak_rss_mb(process):
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


if target == "double":
    litellm_url, litellm_key, model = "http://127.0.0.1:4011", "sk-double-master", "fake-gpt"
    double = subprocess.Popen([DOUBLE_BIN, "--port", "4011", "--master-key", litellm_key],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
else:
    litellm_url, litellm_key, model = os.environ.get("LITELLM_URL", "http://127.0.0.1:4000"), "sk-master-1234", "fake-gpt"
    double = None

api = start(ENV)
call("POST", "/api/organizations/create", {"organization_id": "org_b", "name": "Bench"})
call("POST", "/api/model-groups/create", {"group_name": "g", "models": [model]})
run_id = os.urandom(3).hex()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda i: call("POST", "/api/teams/create", {
        "organization_id": "org_b", "team_id": f"team_{run_id}_{i}", "team_alias": f"t{i}",
        "model_groups": ["g"], "credits": 100, "rpm_limit": 100}), range(n)))
api.terminate()
api.wait()

def all_in_sync(began):
    """Waits (10 minutes at most) until /api/sync/status shows all N teams in sync; returns how
    many were and the seconds since `began`."""
    in_sync = 0
    while time.monotonic() - began < 600:
        in_sync = call("GET", "/api/sync/status")["teams"].get("in_sync", 0)
        if in_sync >= n:
            break
        time.sleep(0.05)
    return in_sync, time.monotonic() - began


api = start({**ENV, "LITELLM_PROXY_URL": litellm_url, "LITELLM_MASTER_KEY": litellm_key})
in_sync, elapsed = all_in_sync(time.monotonic())

# Phase 3: one change to every team, each then brought into LiteLLM again.
changed_at = time.monotonic()
with ThreadPoolExecutor(16) as pool:
    positions = list(pool.map(lambda i: call("POST", f"/api/teams/team_{run_id}_{i}/credits/add",
                                             {"amount": "1"})["position"], range(n)))
# Once the teams read model holds the last change, so does the sync marker beside it (one
# consumer group, one transaction): every team then counts as changed until it is in sync.
call("GET", f"/api/teams/team_{run_id}_0", headers={"X-Wait-For-Position": str(max(positions))})
resynced, change_elapsed = all_in_sync(changed_at)
rss = peak_rss_mb(api)
api.terminate()
api.wait()
if double:
    double.send_signal(2)
    double.wait()
subprocess.run(["psql", "-q", "postgres://postgres@127.0.0.1:5432/postgres", "-c", f'drop database if exists "{DB}" with (force)'],
               check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
result = {"target": target, "teams": n, "in_sync": in_sync, "seconds": round(elapsed, 2),
          "teams_per_second": round(in_sync / elapsed, 1), "resynced": resynced,
          "change_seconds": round(change_elapsed, 2),
          "changes_per_second": round(resynced / change_elapsed, 1), "peak_rss_mb": round(rss, 1)}
print(json.dumps(result), file=sys.stderr)
# The markdown row scripts/bench-sync writes to bench/RESULTS.md.
print(f"| {target} | {in_sync}/{n} | {result['seconds']} | {result['teams_per_second']} "
      f"| {resynced}/{n} | {result['change_seconds']} | {result['changes_per_second']} | {result['peak_rss_mb']} |")
