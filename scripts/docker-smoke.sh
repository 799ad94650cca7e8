#!/usr/bin/env bash
# Container smoke test: builds the image and runs it for real, on loopback only.
#   1. `docker build`, then one container on the demo config: /healthz, Docker's HEALTHCHECK, a MoA
#      completion (JSON and SSE), graceful stop on SIGTERM. Run as Kubernetes runs it: read-only root
#      filesystem, no capabilities, no privilege escalation.
#   2. The image on the Kubernetes ConfigMap's config (deploy/k8s): starts and is ready (no request is
#      sent: that config points at a real provider).
#   3. docker-compose: gateway + simulator container; a completion crosses HTTP to the simulator, which
#      requires its key; with the simulator stopped the gateway fails with a 5xx.
#   4. --profile monitoring: Prometheus scrapes the gateway (target health "up"); the dashboard's
#      queries parse in Prometheus. Grafana only if its image is present locally.
#
#   bash scripts/docker-smoke.sh          # from anywhere; exits non-zero on the first failure
#
# Without an image registry (see ../shared/tools/docker-local.sh beside the repo), the Prometheus
# image is replaced by a stand-in built from Debian's package (scripts/prometheus-standin/), and
# Grafana is skipped. Ports used on 127.0.0.1: 18000-18002, 19000, 19090, 13000.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

IMAGE=moa-gateway:smoke
SINGLE=moa-smoke-single
POD=moa-smoke-pod
SINGLE_PORT=18000
POD_PORT=18002
PROM_STANDIN=moa-smoke/prometheus-standin:debian

# For docker-compose.yml: its own project, image tag and ports, so a stack the developer runs is untouched.
export COMPOSE_PROJECT_NAME=moa-smoke
export MOA_IMAGE=$IMAGE
export GATEWAY_PORT=18001 SIM_PORT=19000 PROMETHEUS_PORT=19090 GRAFANA_PORT=13000
SIM_API_KEY="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export SIM_API_KEY

WORK=$(mktemp -d)
step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

if command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  COMPOSE=(docker-compose)   # checked after docker-local.sh may have installed it
fi
compose() { timeout "${COMPOSE_TIMEOUT:-600}" "${COMPOSE[@]}" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "--- logs (last lines) ---" >&2
    for c in "$SINGLE" "$POD"; do
      docker logs --tail 30 "$c" 2>&1 | sed "s/^/[$c] /" >&2 || true
    done
    compose --profile monitoring logs --tail 30 >&2 2>&1 || true
  fi
  docker rm -f "$SINGLE" "$POD" >/dev/null 2>&1 || true
  COMPOSE_TIMEOUT=120 compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_http URL SECONDS [EXPECTED_STATUS]: poll until the URL answers with the status (default 200).
wait_http() {
  local url=$1 limit=$2 want=${3:-200} code
  local deadline=$((SECONDS + limit))
  while [ "$SECONDS" -lt "$deadline" ]; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
    [ "$code" = "$want" ] && return 0
    sleep 1
  done
  fail "$url did not answer $want within ${limit}s (last: ${code:-none})"
}

# wait_healthy CONTAINER SECONDS: Docker's own HEALTHCHECK verdict.
wait_healthy() {
  local name=$1 limit=$2 status=""
  local deadline=$((SECONDS + limit))
  while [ "$SECONDS" -lt "$deadline" ]; do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null || true)
    [ "$status" = healthy ] && return 0
    sleep 1
  done
  fail "container $name is not healthy within ${limit}s (status: ${status:-none})"
}

# chat PORT MODEL OUT [STREAM]: POST a chat completion; prints the HTTP status.
chat() {
  local port=$1 model=$2 out=$3 stream=${4:-false}
  curl -sS -N -m 90 -o "$out" -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
    -H 'content-type: application/json' \
    -d "{\"model\": \"$model\", \"stream\": $stream, \"messages\": [{\"role\": \"user\", \"content\": \"Name three uses of a paperclip.\"}]}" \
    || true
}

# check_moa FILE CALLS: a chat.completion with content and the `moa` extension, every call ok.
check_moa() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
body = json.load(open(sys.argv[1]))
content = body["choices"][0]["message"]["content"]
assert isinstance(content, str) and content.strip(), "choices[0].message.content is empty"
moa = body["moa"]
calls = moa["calls"]
assert moa["pipeline"] == "moa", moa["pipeline"]
assert len(calls) == int(sys.argv[2]), f"{len(calls)} calls, expected {sys.argv[2]}"
bad = [c for c in calls if c["status"] != "ok"]
assert not bad, f"calls not ok: {bad}"
roles = [c["role"] for c in calls]
assert roles.count("aggregator") == 1, roles
usage = body["usage"]
assert usage["total_tokens"] > 0, usage
print(f"{len(calls)} upstream calls ok ({roles.count('proposer')} proposers, 1 aggregator), "
      f"{usage['total_tokens']} tokens, cost_usd={moa['cost_usd']}; content: {content[:70]!r}...")
EOF
}

# ---------------------------------------------------------------------------------------------------
step "docker engine"
LOCAL_TOOL="$(dirname "$ROOT")/shared/tools/docker-local.sh"
if { ! docker info >/dev/null 2>&1 || ! docker image inspect python:3.11-slim >/dev/null 2>&1; } \
    && [ -f "$LOCAL_TOOL" ]; then
  echo "    no engine or no python:3.11-slim: running $LOCAL_TOOL"
  bash "$LOCAL_TOOL"
fi
docker info >/dev/null 2>&1 || fail "no Docker engine (docker info fails)"
command -v "${COMPOSE[0]}" >/dev/null 2>&1 || fail "no docker-compose"
ok "docker $(docker version -f '{{.Server.Version}}'), $("${COMPOSE[@]}" version --short 2>/dev/null || echo compose)"

step "docker build -t $IMAGE ."
timeout 900 docker build -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; fail "docker build"; }
user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
case "${user%%:*}" in ""|root|0) fail "image runs as root (User='$user')" ;; esac
ok "built, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), user $user"
docker run --rm --entrypoint python "$IMAGE" -c \
  "import importlib.util as u, sys; dev = [m for m in ('pytest', 'mypy', 'ruff', 'openai') if u.find_spec(m)]; print('dev packages in image:', dev) if dev else None; sys.exit(bool(dev))" \
  || fail "dev dependencies in the runtime image"
ok "runtime dependencies only (no pytest/mypy/ruff/openai)"

# A MoA completion (7 upstream calls) and a streamed one through the gateway on port $1; files named $2.
check_completion() {
  local port=$1 name=$2 code summary
  code=$(chat "$port" moa "$WORK/$name.json")
  [ "$code" = 200 ] || fail "completion on :$port: HTTP $code: $(head -c 300 "$WORK/$name.json")"
  summary=$(check_moa "$WORK/$name.json" 7) || fail "bad completion body: $(head -c 300 "$WORK/$name.json")"
  ok "$summary"
  code=$(chat "$port" moa "$WORK/$name.sse" true)
  [ "$code" = 200 ] || fail "streamed completion on :$port: HTTP $code"
  grep -q '"role": *"assistant"' "$WORK/$name.sse" || fail "stream has no role delta"
  [ "$(grep '^data: ' "$WORK/$name.sse" | tail -1)" = "data: [DONE]" ] || fail "stream does not end with data: [DONE]"
  ok "stream: $(grep -c '^data: ' "$WORK/$name.sse") SSE frames, ends with data: [DONE]"
}

# ---------------------------------------------------------------------------------------------------
step "single container, demo config (read-only root fs, no capabilities)"
docker rm -f "$SINGLE" >/dev/null 2>&1 || true
docker run -d --name "$SINGLE" -p "127.0.0.1:$SINGLE_PORT:8000" -e MOA_ALLOW_UNAUTHENTICATED=true \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges "$IMAGE" >/dev/null
wait_http "http://127.0.0.1:$SINGLE_PORT/healthz" 60
ok "/healthz 200"
wait_http "http://127.0.0.1:$SINGLE_PORT/readyz" 30
ok "/readyz 200"

check_completion "$SINGLE_PORT" single

wait_healthy "$SINGLE" 60
ok "Docker HEALTHCHECK: healthy"

start=$SECONDS
docker stop -t 20 "$SINGLE" >/dev/null
took=$((SECONDS - start))
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$SINGLE")
[ "$took" -lt 10 ] || fail "docker stop took ${took}s: SIGTERM did not stop the server (killed at the timeout)"
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"
docker logs "$SINGLE" 2>&1 | grep -q "Finished server process" || fail "no uvicorn shutdown in the logs"
ok "SIGTERM: uvicorn shut down in ${took}s, exit code 0"
docker rm -f "$SINGLE" >/dev/null

# ---------------------------------------------------------------------------------------------------
step "the Kubernetes pod's config (deploy/k8s/configmap.yaml), run as the Deployment runs it"
mkdir -p "$WORK/k8s-config"
docker run --rm -i --entrypoint python "$IMAGE" -c \
  "import sys, yaml; sys.stdout.write(yaml.safe_load(sys.stdin)['data']['moa.yaml'])" \
  < deploy/k8s/configmap.yaml > "$WORK/k8s-config/moa.yaml"
chmod 755 "$WORK/k8s-config"; chmod 644 "$WORK/k8s-config/moa.yaml"
docker rm -f "$POD" >/dev/null 2>&1 || true
# A placeholder provider key: nothing is sent to the provider, only the probes and /v1/models.
docker run -d --name "$POD" -p "127.0.0.1:$POD_PORT:8000" \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges --user 10001:10001 \
  -v "$WORK/k8s-config:/etc/moa-gateway:ro" -e MOA_CONFIG=/etc/moa-gateway/moa.yaml \
  -e TOGETHER_API_KEY=placeholder -e MOA_API_KEYS=smoke-client-key "$IMAGE" >/dev/null
wait_http "http://127.0.0.1:$POD_PORT/readyz" 60
models=$(curl -sS -m 5 -H "authorization: Bearer smoke-client-key" "http://127.0.0.1:$POD_PORT/v1/models" \
  | python3 -c "import json, sys; print(' '.join(sorted(m['id'] for m in json.load(sys.stdin)['data'])))")
case " $models " in *" moa "*) ;; *) fail "/v1/models lacks moa: $models" ;; esac
ok "ready; /v1/models: $models"
docker rm -f "$POD" >/dev/null

# ---------------------------------------------------------------------------------------------------
step "docker-compose up -d --build (gateway + simulator over HTTP)"
compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || true
compose up -d --build >"$WORK/compose-up.log" 2>&1 || { tail -30 "$WORK/compose-up.log" >&2; fail "docker-compose up"; }
grep -E '^(Creating|Starting|Recreating|Building|Network|Volume)' "$WORK/compose-up.log" | sed 's/^/    /' || true
wait_http "http://127.0.0.1:$SIM_PORT/healthz" 90
wait_http "http://127.0.0.1:$GATEWAY_PORT/readyz" 90
ok "simulator and gateway up"

code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$SIM_PORT/v1/chat/completions" \
  -H 'content-type: application/json' -d '{"model": "sim-alpha", "messages": [{"role": "user", "content": "hi"}]}' || true)
[ "$code" = 401 ] || fail "the simulator answered $code without a key (expected 401)"
ok "simulator rejects a request without its key (401)"

check_completion "$GATEWAY_PORT" compose

compose stop -t 5 simulator >/dev/null 2>&1
code=$(chat "$GATEWAY_PORT" moa "$WORK/nosim.json")
case "$code" in
  5??) ok "simulator stopped -> gateway answers $code ($(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e.get("type"), e.get("code"))' "$WORK/nosim.json" 2>/dev/null || echo '?')): the answers came from the simulator container" ;;
  *) fail "with the simulator stopped the gateway answered $code: $(head -c 300 "$WORK/nosim.json")" ;;
esac
compose start simulator >/dev/null 2>&1
wait_http "http://127.0.0.1:$SIM_PORT/healthz" 60
code=$(chat "$GATEWAY_PORT" moa "$WORK/again.json")
[ "$code" = 200 ] || fail "after restarting the simulator: HTTP $code"
ok "simulator restarted -> 200 again"

# ---------------------------------------------------------------------------------------------------
step "docker-compose --profile monitoring up -d"
# Images are used only if present locally: this script pulls nothing (compose would, for a user).
PROM_DEFAULT=$(sed -n 's/.*PROMETHEUS_IMAGE:-\([^}]*\)}.*/\1/p' docker-compose.yml)
GRAFANA_DEFAULT=$(sed -n 's/.*GRAFANA_IMAGE:-\([^}]*\)}.*/\1/p' docker-compose.yml)
export PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-$PROM_DEFAULT}
export GRAFANA_IMAGE=${GRAFANA_IMAGE:-$GRAFANA_DEFAULT}
if ! docker image inspect "$PROMETHEUS_IMAGE" >/dev/null 2>&1; then
  echo "    $PROMETHEUS_IMAGE is not present locally: building the stand-in $PROM_STANDIN (Debian's Prometheus)"
  timeout 600 docker build -q -t "$PROM_STANDIN" scripts/prometheus-standin >/dev/null 2>&1 \
    || fail "building the Prometheus stand-in failed"
  export PROMETHEUS_IMAGE=$PROM_STANDIN
fi
services=(prometheus)
if docker image inspect "$GRAFANA_IMAGE" >/dev/null 2>&1; then
  services+=(grafana)
else
  echo "    SKIP grafana: $GRAFANA_IMAGE is not present locally (and there is no stand-in for it)"
fi
docker run --rm --entrypoint promtool -v "$ROOT/deploy/prometheus/prometheus.yml:/p.yml:ro" \
  "$PROMETHEUS_IMAGE" check config /p.yml >/dev/null || fail "promtool check config"
ok "promtool check config deploy/prometheus/prometheus.yml ($PROMETHEUS_IMAGE)"
compose --profile monitoring up -d "${services[@]}" >"$WORK/monitoring-up.log" 2>&1 \
  || { tail -30 "$WORK/monitoring-up.log" >&2; fail "docker-compose --profile monitoring up"; }
grep -E '^(Creating|Starting|Recreating)' "$WORK/monitoring-up.log" | sed 's/^/    /' || true
wait_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 90
ok "Prometheus ready ($(docker run --rm --entrypoint prometheus "$PROMETHEUS_IMAGE" --version 2>&1 | head -1))"

# Every dashboard query must parse and evaluate (Grafana's variables replaced by plain values).
python3 - "$PROMETHEUS_PORT" <<'EOF' || fail "dashboard queries"
import json, sys, urllib.parse, urllib.request
port = sys.argv[1]
dash = json.load(open("deploy/grafana/dashboards/moa-gateway.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
exprs += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
bad = []
for expr in exprs:
    q = expr.replace("$__rate_interval", "1m").replace("$model", ".*")
    q = q.replace("label_values(moa_upstream_request_duration_seconds_count, model)",
                  "group by (model) (moa_upstream_request_duration_seconds_count)")
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            status = json.load(r)["status"]
    except urllib.error.HTTPError as e:
        status = json.load(e).get("error", str(e))
    if status != "success":
        bad.append(f"{expr}: {status}")
for b in bad:
    print("    bad query:", b)
print(f"    ok: {len(exprs) - len(bad)}/{len(exprs)} dashboard queries parse and evaluate in Prometheus")
sys.exit(1 if bad else 0)
EOF

if [ "${services[*]}" != prometheus ]; then
  wait_http "http://127.0.0.1:$GRAFANA_PORT/api/health" 120
  curl -sS -m 5 "http://127.0.0.1:$GRAFANA_PORT/api/search?query=moa-gateway" | grep -q '"uid":"moa-gateway"' \
    || fail "Grafana has not provisioned the moa-gateway dashboard"
  ok "Grafana up, dashboard moa-gateway provisioned"
fi

echo "    waiting for Prometheus to scrape the gateway (up to 60s)..."
python3 - "$PROMETHEUS_PORT" <<'EOF' || fail "Prometheus target moa-gateway is not up"
import json, sys, time, urllib.request
port, deadline, last = sys.argv[1], time.monotonic() + 60, "no target yet"
while time.monotonic() < deadline:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as r:
        targets = [t for t in json.load(r)["data"]["activeTargets"] if t["labels"].get("job") == "moa-gateway"]
    if targets and all(t["health"] == "up" for t in targets):
        print(f"    ok: Prometheus target moa-gateway up ({', '.join(t['scrapeUrl'] for t in targets)})")
        sys.exit(0)
    if targets:
        last = "; ".join(f"{t['scrapeUrl']} health={t['health']} lastError={t['lastError']!r}" for t in targets)
    time.sleep(2)
print(f"    {last}")
sys.exit(1)
EOF

# The dashboard's metric names against what the gateway exports (labelled series appear on first use).
python3 - "$PROMETHEUS_PORT" <<'EOF'
import json, re, sys, urllib.parse, urllib.request
port = sys.argv[1]
dash = json.load(open("deploy/grafana/dashboards/moa-gateway.json"))
used = {re.sub(r"_(bucket|count|sum)$", "", m) for p in dash["panels"] for t in p.get("targets", [])
        for m in re.findall(r"\bmoa_[a-z_]+", t["expr"])}
q = urllib.parse.urlencode({"match[]": '{__name__=~"moa_.+"}'})
with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/label/__name__/values?{q}", timeout=10) as r:
    have = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in json.load(r)["data"]}
missing = sorted(used - have)
print(f"    dashboard metrics seen in Prometheus: {len(used) - len(missing)}/{len(used)}"
      + (f"; not (yet) exported: {', '.join(missing)}" if missing else ""))
EOF

# ---------------------------------------------------------------------------------------------------
step "docker-compose down"
COMPOSE_TIMEOUT=120 compose --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || fail "docker-compose down"
ok "stack removed"
printf '\nsmoke: all checks passed\n'
