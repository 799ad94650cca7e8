# moa-gateway container image.
#
#   docker build -t moa-gateway .
#   docker run --rm -p 127.0.0.1:8000:8000 -e MOA_ALLOW_UNAUTHENTICATED=true moa-gateway   # the demo
#   ... -e OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 ...      # traces (the [otel] extra is in)
#   docker run --rm -p 8000:8000 -v "$PWD/my.yaml:/etc/moa/my.yaml:ro" -e MOA_CONFIG=/etc/moa/my.yaml \
#     -e TOGETHER_API_KEY -e MOA_API_KEYS moa-gateway               # your config, keys from the env
#
# The same image runs the standalone simulator: `docker run moa-gateway simulate --host 0.0.0.0 ...`.
# Provider keys are never baked in: the config names them as ${VAR} and they come from the environment.

# --- builder: a virtualenv with the runtime dependencies and the [otel] extra (no [dev] extras) ----
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml alone, so this layer is rebuilt only when they change
# and not on every edit under app/. The [otel] extra too: platforms inject OTEL_EXPORTER_OTLP_ENDPOINT,
# and tracing then just works (an unreachable collector never affects requests).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['otel']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY README.md LICENSE ./
COPY app ./app
RUN pip install --no-deps . \
 && pip check

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="moa-gateway" \
      org.opencontainers.image.description="OpenAI-compatible gateway running Mixture-of-Agents over upstream LLMs" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it and volume permissions are predictable.
# /data, owned by it, holds the stored-responses database (below).
RUN groupadd --gid 10001 moa \
 && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin moa \
 && mkdir /data \
 && chown 10001:10001 /data

# Bytecode was compiled at install time, so a read-only root filesystem works.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The demo config (simulated models, no keys) is the default; mount any other file and name it in MOA_CONFIG.
COPY config/ /app/config/

USER 10001:10001

# Listen on every interface inside the container; publish the port on the host as you need.
# Secure by default: on 0.0.0.0 the gateway starts only with client keys (MOA_API_KEYS). For the demo,
# or behind an API gateway that authenticates callers, pass -e MOA_ALLOW_UNAUTHENTICATED=true.
# One worker process per CPU the container may use (its CPU limit, rounded up): one Python process uses
# one core. Their metrics are shared through files in /dev/shm (docs/operations/metrics.md).
# Stored /v1/responses go to one SQLite file (WAL) that every worker shares, so a previous_response_id
# reaches its response whichever worker a connection lands on. /data is a volume: writable under a
# read-only root filesystem, an anonymous volume unless you mount one (-v moa-data:/data to keep it, or
# --tmpfs /data). Several replicas share Redis instead: MOA_RESPONSES_STORE=redis://...
ENV MOA_HOST=0.0.0.0 \
    MOA_PORT=8000 \
    MOA_CONFIG=/app/config/moa.yaml \
    MOA_WORKERS=auto \
    MOA_RESPONSES_STORE=sqlite:///data/responses.db
VOLUME ["/data"]
EXPOSE 8000

# Python's urllib, so the image needs no curl. Any non-2xx or connection error exits non-zero.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MOA_PORT', '8000'), timeout=2)"]

# Exec form: moa-gateway is PID 1 and receives SIGTERM itself; it drains every worker gracefully.
ENTRYPOINT ["moa-gateway"]
CMD ["serve"]
