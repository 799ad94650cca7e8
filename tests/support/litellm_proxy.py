"""The LiteLLM proxy in front of a gateway, as the guide "Behind a gateway" runs it: `litellm --config
deploy/litellm/config.yaml`, from its own venv (`make edge`), on a free loopback port. It reaches only
loopback: the model price map is its packaged copy, telemetry is vetoed, and any other address goes to a
dead proxy."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.cli import free_port
from tests.support.node_clients import CLIENT_ENV

ROOT = Path(__file__).resolve().parents[2]
LITELLM = (
    ROOT / "tests" / "e2e" / "edge" / ".litellm-venv" / "bin" / "litellm"
)  # made by `make edge` (`make test` runs it)
CONFIG = ROOT / "deploy" / "litellm" / "config.yaml"
MASTER_KEY = "sk-litellm-test-0123456789abcdef0123456789"
START_TIMEOUT_S = 120  # a first start compiles LiteLLM's modules: 15 s here, more on a busy machine
# What keeps LiteLLM on loopback (bench/side_by_side.py starts it with these too): the price map it ships,
# not one from the internet, telemetry vetoed, and any other address sent to a dead proxy.
LOOPBACK_ENV = {
    **CLIENT_ENV,
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY_DISABLED": "true",
}


class LiteLLMProxy:
    """`with LiteLLMProxy(base_url, key) as proxy:` serves LiteLLM at `proxy.url`, its models being the
    gateway's pipelines at `base_url` (its /v1), called with the gateway key `key`."""

    def __init__(self, gateway_base_url: str, gateway_key: str) -> None:
        assert LITELLM.exists(), "LiteLLM's venv is missing: run `make edge`"
        self._home = tempfile.TemporaryDirectory(prefix="moa-litellm-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **LOOPBACK_ENV,
            "HOME": self._home.name,
            "MOA_GATEWAY_URL": gateway_base_url,
            "MOA_GATEWAY_KEY": gateway_key,
            "LITELLM_MASTER_KEY": MASTER_KEY,
        }
        self._log = Path(self._home.name) / "litellm.log"
        self._process: subprocess.Popen[bytes] | None = None

    def metrics(self) -> str:
        """LiteLLM's Prometheus exposition (behind its master key)."""
        headers = {"authorization": f"Bearer {MASTER_KEY}"}
        return httpx.get(f"{self.url}/metrics/", headers=headers).text

    def __enter__(self) -> LiteLLMProxy:
        command = [str(LITELLM), "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(self.port)]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                command, cwd=self._home.name, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = self._log.read_text(errors="replace")[-3000:]
                self.__exit__(None, None, None)
                raise RuntimeError(f"LiteLLM did not start:\n{output}")
            time.sleep(0.2)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._home.cleanup()
