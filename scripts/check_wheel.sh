#!/usr/bin/env bash
# What a user gets from `pip install <wheel>`, proven from outside the checkout (CI runs it after
# `make test`, see .ci/run):
#   1. `python -m build` builds the sdist, then the wheel from that sdist (so the sdist is complete);
#      their metadata is checked (name, version, license and its file, Python, dependencies, the
#      console script, the README as description), and the wheel holds only `moa_gateway` (no tests,
#      no top-level `app`) with its package data.
#   2. The wheel goes into a fresh venv in a temporary directory; from another directory:
#      `moa-gateway --version`, `python -c "import app"` fails, `moa-gateway serve` with no config exits
#      non-zero naming --config, MOA_CONFIG, --demo and `moa-gateway init`, `init` writes a config that
#      `check-config` accepts, and `moa-gateway serve --demo` answers a chat completion.
#
#   bash scripts/check_wheel.sh          # from anywhere; exits non-zero on the first failure
#
# Needs python3 (3.11+) with venv, and PyPI for the build backend and the runtime dependencies.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
SERVER_PID=""
START=$SECONDS

step() { printf '\n== %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() { printf '    FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ "$rc" -ne 0 ] && [ -f "$WORK/serve.log" ] && tail -20 "$WORK/serve.log" | sed 's/^/    [serve] /' >&2
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

VERSION=$("$PYTHON" -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['project']['version'])" \
  "$ROOT/pyproject.toml")

# ---------------------------------------------------------------------------------------------------
step "python -m build (sdist, then the wheel from it)"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet --disable-pip-version-check 'build>=1.2,<2'
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; fail "python -m build"; }
WHEEL=$(ls "$WORK"/dist/*.whl)
SDIST=$(ls "$WORK"/dist/*.tar.gz)
ok "$(basename "$SDIST"), $(basename "$WHEEL")"

step "metadata and contents"
# With the build venv's Python: it has `packaging`, which compares requirements as pip reads them.
"$WORK/tools/bin/python" - "$ROOT" "$WHEEL" "$SDIST" "$VERSION" <<'EOF' || fail "metadata or contents"
import email.parser, sys, tarfile, tomllib, zipfile
from pathlib import Path

from packaging.requirements import Requirement

root, wheel_path, sdist_path, version = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
problems = []

def check(condition, message):
    if not condition:
        problems.append(message)

wheel = zipfile.ZipFile(wheel_path)
names = wheel.namelist()
info = f"moa_gateway-{version}.dist-info"
meta = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
check(meta["Metadata-Version"] >= "2.4", f"Metadata-Version {meta['Metadata-Version']} (license expressions need 2.4)")
check(meta["Name"] == "moa-gateway", f"Name {meta['Name']}")
check(meta["Version"] == version, f"Version {meta['Version']} != {version}")
check(meta["Summary"] == project["description"], "Summary is not pyproject's description")
check(meta["License-Expression"] == "Apache-2.0", f"License-Expression {meta['License-Expression']}")
check(meta.get_all("License-File") == ["LICENSE"], f"License-File {meta.get_all('License-File')}")
check(wheel.read(f"{info}/licenses/LICENSE") == (root / "LICENSE").read_bytes(), "the wheel's LICENSE differs")
check(meta["Requires-Python"] == ">=3.11", f"Requires-Python {meta['Requires-Python']}")
check(meta["Description-Content-Type"] == "text/markdown", "README is not the markdown description")
check(meta.get_payload().startswith("# moa-gateway"), "the description is not the README")
requires = meta.get_all("Requires-Dist") or []
runtime = {str(Requirement(r)) for r in requires if "extra ==" not in r}
wanted = {str(Requirement(d)) for d in project["dependencies"]}
check(runtime == wanted, f"Requires-Dist differs from pyproject's dependencies: {runtime ^ wanted}")
check(set(meta.get_all("Provides-Extra") or []) == {"dev", "docs", "otel"}, f"extras {meta.get_all('Provides-Extra')}")
entry_points = wheel.read(f"{info}/entry_points.txt").decode()
check("moa-gateway = moa_gateway.cli:main" in entry_points, "no moa-gateway console script")
check(wheel_path.endswith("-py3-none-any.whl"), "not a pure-Python wheel")

top = sorted({n.split("/")[0] for n in names})
check(top == ["moa_gateway", info], f"top-level entries: {top} (only moa_gateway and its dist-info)")
check(not [n for n in names if "/tests/" in f"/{n}" or n.split("/")[-1].startswith("test_")], "tests in the wheel")
for data in ("moa_gateway/config/demo.yaml", "moa_gateway/config/starter.yaml", "moa_gateway/api/static/playground.html"):
    check(data in names, f"{data} missing")
check(any(n.startswith("moa_gateway/eval/prompts/") for n in names), "the judge prompts are missing")
check(wheel.read("moa_gateway/config/demo.yaml") == (root / "config" / "moa.yaml").read_bytes(),
      "the packaged demo differs from config/moa.yaml")

sdist = tarfile.open(sdist_path)
base = f"moa_gateway-{version}"
members = set(sdist.getnames())
for needed in ("PKG-INFO", "LICENSE", "README.md", "pyproject.toml", "app/moa_gateway/config/demo.yaml"):
    check(f"{base}/{needed}" in members, f"sdist lacks {needed}")
sdist_meta = email.parser.Parser().parsestr(sdist.extractfile(f"{base}/PKG-INFO").read().decode())
check(sdist_meta["Version"] == version and sdist_meta["License-Expression"] == "Apache-2.0", "sdist PKG-INFO")

for p in problems:
    print("    problem:", p)
if problems:
    sys.exit(1)
print(f"    ok: METADATA {meta['Metadata-Version']}: {meta['Name']} {meta['Version']}, {meta['License-Expression']}, "
      f"{len(runtime)} runtime dependencies; wheel: {len(names)} files, top level {top}; sdist: {len(members)} entries")
EOF

# ---------------------------------------------------------------------------------------------------
step "pip install the wheel into a fresh venv outside the checkout"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" >"$WORK/install.log" 2>&1 \
  || { tail -20 "$WORK/install.log" >&2; fail "pip install"; }
"$WORK/venv/bin/pip" check >/dev/null || fail "pip check"
ok "installed, $(du -sm "$WORK/venv" | cut -f1) MB venv; pip check passes"

# Everything below runs from a directory that is neither the checkout nor holds a config, with none of
# the checkout's or the caller's settings in the environment.
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
run() { env -u MOA_CONFIG -u PYTHONPATH -u VIRTUAL_ENV PATH="$WORK/venv/bin:/usr/bin:/bin" "$@"; }

step "the installed command, from another directory"
got=$(run moa-gateway --version)
[ "$got" = "moa-gateway $VERSION" ] || fail "moa-gateway --version: '$got'"
ok "moa-gateway --version: $got"
got=$(run python -m moa_gateway --version)
[ "$got" = "moa-gateway $VERSION" ] || fail "python -m moa_gateway --version: '$got'"
ok "python -m moa_gateway --version: $got"
if run python -c "import app" 2>"$WORK/import.err"; then fail "import app succeeded"; fi
grep -q "ModuleNotFoundError: No module named 'app'" "$WORK/import.err" || fail "import app: $(cat "$WORK/import.err")"
ok "python -c 'import app': ModuleNotFoundError"

set +e
run moa-gateway serve >"$WORK/noconfig.out" 2>&1
code=$?
set -e
[ "$code" -ne 0 ] || fail "moa-gateway serve with no config exited 0"
for hint in "--config" "MOA_CONFIG" "--demo" "moa-gateway init"; do
  grep -qF -- "$hint" "$WORK/noconfig.out" || fail "no '$hint' in: $(cat "$WORK/noconfig.out")"
done
ok "serve with no config: exit $code, $(cat "$WORK/noconfig.out")"

run moa-gateway init >/dev/null || fail "moa-gateway init"
run env OPENAI_API_KEY=placeholder moa-gateway check-config config/moa.yaml >/dev/null || fail "check-config of init's file"
run moa-gateway init >/dev/null 2>&1 && fail "moa-gateway init overwrote config/moa.yaml"
ok "init wrote config/moa.yaml, check-config accepts it, a second init refuses to overwrite it"

step "moa-gateway serve --demo answers a chat completion"
mkdir "$WORK/demo-dir" && cd "$WORK/demo-dir"
PORT=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
# Not through run(): a backgrounded function is a subshell, and its pid is not the server's. env execs.
env -u MOA_CONFIG -u PYTHONPATH -u VIRTUAL_ENV PATH="$WORK/venv/bin:/usr/bin:/bin" \
  moa-gateway serve --demo --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
run python - "$PORT" <<'EOF' || fail "chat completion through the installed gateway"
import json, sys, time, urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("not ready in 30 s")
        time.sleep(0.2)
body = json.dumps({"model": "moa", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}).encode()
request = urllib.request.Request(f"{base}/v1/chat/completions", body, {"content-type": "application/json"})
with urllib.request.urlopen(request, timeout=60) as r:
    answer = json.load(r)
content = answer["choices"][0]["message"]["content"]
calls = answer["moa"]["calls"]
assert content.strip(), "empty answer"
assert len(calls) == 7 and all(c["status"] == "ok" for c in calls), calls
print(f"    ok: 200, {len(calls)} upstream calls, {answer['usage']['total_tokens']} tokens: {content[:60]!r}...")
EOF
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
grep -q "Finished server process" "$WORK/serve.log" || fail "the server did not stop on SIGTERM"
[ ! -e "$WORK/demo-dir/config" ] || fail "serve --demo wrote into the working directory"

printf '\nwheel check: all checks passed in %ds\n' "$((SECONDS - START))"
