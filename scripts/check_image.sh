#!/usr/bin/env bash
# The container image keeps the promises of its defaults, checked for real on loopback:
#   1. `docker build`: non-root, /data a volume, the [otel] extra in, no dev packages.
#   2. OTEL_EXPORTER_OTLP_ENDPOINT pointing at nothing (as platforms inject it): every worker starts and
#      a MoA chat completion answers; read-only root filesystem, no capabilities, /data on a tmpfs.
#   3. Default settings (MOA_WORKERS=auto, the image's SQLite response store, an anonymous /data
#      volume, read-only root filesystem): 8 of 8 `previous_response_id` continuations, each on a
#      fresh connection, find the response before them. For contrast, the same with
#      MOA_RESPONSES_STORE=memory (each worker its own store) is reported, not required to fail.
#   4. A broken config: the container exits non-zero within 15 s, its last line naming file and field.
#   5. Worker count: with no CPU limit, MOA_CPU_REQUEST=1 starts one process, not one per host core.
#   6. docker-compose --profile redis with MOA_RESPONSES_STORE=redis://redis:6379/0: 8 of 8
#      continuations, the responses in Redis.
#   7. deploy/k8s renders (kubectl kustomize, when kubectl is installed) with the Redis store, workers
#      from the CPU request and no CPU limit.
#
#   bash scripts/check_image.sh          # from anywhere; exits non-zero on the first failure
#
# Needs a Docker engine (without one, ../shared/tools/docker-local.sh beside the repo installs it and a
# local python:3.11-slim stand-in). Without an image registry, the Redis image is replaced by a stand-in
# built from Debian's package (scripts/redis-standin/). Ports used on 127.0.0.1: 18500-18503, 19503.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGE=${IMAGE:-moa-gateway:check}
PREFIX=moa-check
WORK=$(mktemp -d)
START=$SECONDS

step() { printf '\n== %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() { printf '    FAIL: %s\n' "$*" >&2; exit 1; }

containers() { docker ps -aq --filter "name=^${PREFIX}-" 2>/dev/null; }
if command -v docker-compose >/dev/null 2>&1; then COMPOSE=(docker-compose); else COMPOSE=(docker compose); fi
# docker-compose.yml under its own project name, image and ports: a stack the developer runs is untouched.
compose() {
  COMPOSE_PROJECT_NAME=$PREFIX MOA_IMAGE=$IMAGE GATEWAY_PORT=18503 SIM_PORT=19503 \
    timeout "${COMPOSE_TIMEOUT:-300}" "${COMPOSE[@]}" "$@"
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    for c in $(docker ps -a --filter "name=^${PREFIX}-" --format '{{.Names}}' 2>/dev/null); do
      docker logs --tail 20 "$c" 2>&1 | sed "s/^/    [$c] /" >&2 || true
    done
  fi
  [ "$rc" -eq 0 ] || compose --profile redis logs --tail 20 >&2 2>&1 || true
  COMPOSE_TIMEOUT=120 compose --profile redis down -v --remove-orphans >/dev/null 2>&1 || true
  ids=$(containers)
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_ready PORT NAME: /readyz answers 200 within 60 s, or the container's end is reported.
wait_ready() {
  local port=$1 name=$2 deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] \
      || fail "$name stopped: $(docker logs --tail 5 "$name" 2>&1)"
    curl -sf -o /dev/null -m 2 "http://127.0.0.1:$port/readyz" && return 0
    sleep 1
  done
  fail "$name: /readyz did not answer 200 within 60 s"
}

# run NAME PORT [docker run options...]: the image, as a platform runs it (read-only, no capabilities).
run() {
  local name=$PREFIX-$1 port=$2
  shift 2
  docker run -d --name "$name" -p "127.0.0.1:$port:8000" --read-only --tmpfs /tmp --cap-drop ALL \
    --security-opt no-new-privileges -e MOA_ALLOW_UNAUTHENTICATED=true "$@" "$IMAGE" >/dev/null
  wait_ready "$port" "$name"
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
ok "docker $(docker version -f '{{.Server.Version}}')"

step "docker build -t $IMAGE ."
build_start=$SECONDS
timeout 900 docker build -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; fail "docker build"; }
user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || fail "image user '$user'"
docker image inspect -f '{{json .Config.Volumes}}' "$IMAGE" | grep -q '"/data"' || fail "/data is not a volume"
docker run --rm --entrypoint python "$IMAGE" -c '
import importlib.util as u, os, sys
dev = [m for m in ("pytest", "mypy", "ruff", "openai") if u.find_spec(m)]
otel = [m for m in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http") if not u.find_spec(m)]
sys.exit(f"dev packages {dev}" if dev else f"missing {otel}" if otel else None)
' || fail "image packages"
ok "built in $((SECONDS - build_start))s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), user $user, /data a volume, [otel] in, no dev packages"
ok "defaults: $(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | grep -E '^MOA_(WORKERS|RESPONSES_STORE)=' | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------------
step "OTEL_EXPORTER_OTLP_ENDPOINT pointing at nothing: serves chat"
run otel 18500 -e OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 --tmpfs /data:uid=10001,gid=10001
python3 - 18500 <<'EOF' || fail "chat completion with tracing on"
import json, sys, urllib.request
body = json.dumps({"model": "moa", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", body, {"content-type": "application/json"})
with urllib.request.urlopen(req, timeout=60) as r:
    answer = json.load(r)
calls = answer["moa"]["calls"]
assert len(calls) == 7 and all(c["status"] == "ok" for c in calls), calls
print(f"    ok: 200, {len(calls)} upstream calls ok: {answer['choices'][0]['message']['content'][:50]!r}...")
EOF
sleep 2
logs=$(docker logs "$PREFIX-otel" 2>&1)
workers=$(sed -n 's/.*serving on .* with \([0-9]*\) workers.*/\1/p' <<<"$logs" | head -1)
if grep -qE "exited with|could not start" <<<"$logs"; then fail "a worker died: $(grep -E 'exited with|could not start' <<<"$logs" | head -3)"; fi
[ "$(docker inspect -f '{{.State.Running}}' "$PREFIX-otel")" = true ] || fail "the container stopped"
ok "${workers:-1} worker(s) up, none restarted; container running"
docker rm -f -v "$PREFIX-otel" >/dev/null

# ---------------------------------------------------------------------------------------------------
# continuations PORT: a stored response, then 8 continuations each on a new connection (urllib opens
# one per request), each from the response before it. Prints "<ok> <total>".
continuations() {
  python3 - "$1" <<'EOF'
import json, sys, urllib.error, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/v1/responses"

def create(**fields):
    body = json.dumps({"model": "sim-alpha", "store": True, **fields}).encode()
    req = urllib.request.Request(base, body, {"content-type": "application/json", "connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

status, first = create(input="Remember the word 'heron'.")
assert status == 200, (status, first)
previous, good = first["id"], 0
for turn in range(8):
    status, answer = create(input=f"Turn {turn}: which word?", previous_response_id=previous)
    if status == 200:
        good, previous = good + 1, answer["id"]
print(good, 8)
EOF
}

step "default settings: previous_response_id on fresh connections"
run defaults 18501
logs=$(docker logs "$PREFIX-defaults" 2>&1)
workers=$(sed -n 's/.*serving on .* with \([0-9]*\) workers.*/\1/p' <<<"$logs" | head -1)
[ "${workers:-1}" -ge 2 ] || fail "default settings started ${workers:-1} worker: this check needs 2+ (a host with 2+ CPUs)"
read -r good total < <(continuations 18501)
[ "$good" = "$total" ] || fail "$good of $total continuations found their previous response ($workers workers)"
ok "$good of $total continuations answered 200 with $workers workers (store: $(docker exec "$PREFIX-defaults" printenv MOA_RESPONSES_STORE))"
docker rm -f -v "$PREFIX-defaults" >/dev/null

run memory 18502 -e MOA_RESPONSES_STORE=memory
read -r good total < <(continuations 18502)
echo "    for contrast, MOA_RESPONSES_STORE=memory with $workers workers: $good of $total"
docker rm -f -v "$PREFIX-memory" >/dev/null

# ---------------------------------------------------------------------------------------------------
step "a broken config: exits non-zero within 15 s, one clear line"
printf 'providers:\n  sim: {type: simulated}\nmodels:\n  a: {provider: sim, temprature: 0.7}\n' >"$WORK/broken.yaml"
chmod 644 "$WORK/broken.yaml"
t0=$SECONDS
set +e
timeout 60 docker run --name "$PREFIX-broken" --read-only --cap-drop ALL -e MOA_ALLOW_UNAUTHENTICATED=true \
  -v "$WORK/broken.yaml:/etc/moa/broken.yaml:ro" -e MOA_CONFIG=/etc/moa/broken.yaml "$IMAGE" >"$WORK/broken.out" 2>&1
code=$?
set -e
took=$((SECONDS - t0))
last=$(tail -1 "$WORK/broken.out")
[ "$code" -ne 0 ] && [ "$code" -ne 124 ] || fail "exit $code after ${took}s: $(tail -3 "$WORK/broken.out")"
[ "$took" -le 15 ] || fail "took ${took}s"
grep -q "/etc/moa/broken.yaml" <<<"$last" && grep -q "temprature" <<<"$last" || fail "last line: $last"
ok "exit $code after ${took}s: $last"

# ---------------------------------------------------------------------------------------------------
step "worker count: no CPU limit, MOA_CPU_REQUEST=1"
run request 18500 -e MOA_CPU_REQUEST=1
sleep 1
logs=$(docker logs "$PREFIX-request" 2>&1)
if grep -q "with [0-9]* workers" <<<"$logs"; then fail "started several workers: $(grep 'with [0-9]* workers' <<<"$logs")"; fi
grep -q "Uvicorn running on" <<<"$logs" || fail "no single-process server in the logs"
ok "one process on a host of $(nproc) CPUs"
docker rm -f -v "$PREFIX-request" >/dev/null

# ---------------------------------------------------------------------------------------------------
step "docker-compose --profile redis, MOA_RESPONSES_STORE=redis://redis:6379/0"
REDIS_DEFAULT=$(sed -n 's/.*REDIS_IMAGE:-\([^}]*\)}.*/\1/p' docker-compose.yml)
export REDIS_IMAGE=${REDIS_IMAGE:-$REDIS_DEFAULT}
if ! docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1; then
  echo "    $REDIS_IMAGE is not present locally: building the stand-in moa-check/redis-standin:debian"
  timeout 600 docker build -q -t moa-check/redis-standin:debian scripts/redis-standin >/dev/null 2>&1 \
    || fail "building the Redis stand-in failed"
  export REDIS_IMAGE=moa-check/redis-standin:debian
fi
export SIM_API_KEY="check-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
MOA_RESPONSES_STORE=redis://redis:6379/0 compose --profile redis up -d >"$WORK/compose.log" 2>&1 \
  || { tail -20 "$WORK/compose.log" >&2; fail "docker-compose --profile redis up"; }
deadline=$((SECONDS + 90))
until curl -sf -o /dev/null -m 2 http://127.0.0.1:18503/readyz; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the compose gateway is not ready within 90 s"
  sleep 1
done
read -r good total < <(continuations 18503)
[ "$good" = "$total" ] || fail "$good of $total continuations through Redis"
keys=$(compose --profile redis exec -T redis redis-cli dbsize | tr -d '\r')
[ "${keys:-0}" -gt 0 ] || fail "no keys in Redis"
ok "$good of $total continuations answered 200; $keys keys in Redis ($REDIS_IMAGE)"
COMPOSE_TIMEOUT=120 compose --profile redis down -v --remove-orphans >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------------
step "deploy/k8s renders"
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/k8s >"$WORK/k8s.yaml" || fail "kubectl kustomize deploy/k8s"
  python3 - "$WORK/k8s.yaml" <<'EOF' || fail "rendered manifests"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "moa-gateway")
container = gateway["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e for e in container["env"]}
assert env["MOA_RESPONSES_STORE"]["value"] == "redis://moa-gateway-redis:6379/0", env["MOA_RESPONSES_STORE"]
assert env["MOA_WORKERS"]["value"] == "auto"
assert env["MOA_CPU_REQUEST"]["valueFrom"]["resourceFieldRef"]["resource"] == "requests.cpu"
assert "cpu" not in container["resources"].get("limits", {}), container["resources"]
kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
assert "Service/moa-gateway-redis" in kinds and "NetworkPolicy/moa-gateway-redis" in kinds, kinds
print(f"    ok: {len(docs)} objects; gateway: workers auto from requests.cpu "
      f"({container['resources']['requests']['cpu']}), no CPU limit, store {env['MOA_RESPONSES_STORE']['value']}")
EOF
else
  echo "    SKIP: no kubectl"
fi

printf '\nimage check: all checks passed in %ds\n' "$((SECONDS - START))"
