"""`moa-gateway serve --demo` and a config from `moa-gateway init`, served as a user would start them:
a subprocess in a directory holding no config, driven by the official openai SDK."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import openai

from tests.support.asks import ASK
from tests.support.cli import free_port, wait_ready
from tests.support.configs import SIM_KEY
from tests.support.servers import ServerThread


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k != "MOA_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "moa_gateway", *args],
        cwd=cwd,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ask(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, str]:
    """Serve with `args` on a free port, answer one chat completion of `moa`; (content, output)."""
    port = free_port()
    process = start([*args, "--port", str(port)], cwd, env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0) as client:
            completion = client.chat.completions.create(model="moa", messages=ASK)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    return completion.choices[0].message.content or "", output


def test_serve_demo_answers_from_a_directory_with_no_config(tmp_path: Path) -> None:
    content, _ = ask(["serve", "--demo"], tmp_path, {})

    assert content.strip(), "the demo pipeline answered"
    assert not (tmp_path / "config").exists()


def test_the_config_init_writes_serves_a_pipeline_over_http(sim_server: ServerThread, tmp_path: Path) -> None:
    init = subprocess.run(
        [sys.executable, "-m", "moa_gateway", "init"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote config/moa.yaml" in init.stdout

    # No --config: `serve` finds what `init` wrote; the provider's URL and key come from the environment.
    env = {"OPENAI_BASE_URL": f"{sim_server.url}/v1", "OPENAI_API_KEY": SIM_KEY, "MOA_AGGREGATOR": "agg-x"}
    content, output = ask(["serve"], tmp_path, env)

    # The simulator answers as the upstream model id it was sent: the aggregator's from the environment.
    assert content.startswith("[agg-x] Synthesis of 3 responses"), content[:80]
    assert "(1) gpt-4.1-mini: " in content, "the starter's default proposer ids are sent"
    assert SIM_KEY not in output
