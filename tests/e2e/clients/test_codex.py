"""Codex CLI (npm @openai/codex) with its default config, on a custom model provider pointing at the
gateway: `codex exec` completes a turn, tool round trip included, though Codex offers the hosted
`web_search` tool with every request (the gateway drops it). Nothing leaves 127.0.0.1."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.gateways import Gateway
from tests.support.node_clients import CLIENT_ENV, NODE_MODULES


def test_codex_exec_completes_with_its_default_config(gateway: Gateway, tmp_path: Path) -> None:
    codex = NODE_MODULES / ".bin" / "codex"
    assert codex.exists(), "Codex is not installed: run `make clients`"
    home, work = tmp_path / "codex", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        'model = "moa-1"\n'
        'model_provider = "moa"\n\n'
        "[model_providers.moa]\n"
        'name = "moa-gateway"\n'
        f'base_url = "{gateway.base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "MOA_KEY"\n'
    )
    done = subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", "Say hello"],
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**CLIENT_ENV, "HOME": str(tmp_path), "CODEX_HOME": str(home), "MOA_KEY": "unused"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith("[omega] On 'Say hello'")
    # the aggregator called one of Codex's tools, Codex answered it, then the aggregator answered
    first, second = gateway.recorder.sent_to("omega")
    assert first["tools"] and all(t["type"] == "function" for t in first["tools"])
    assert second["messages"][-1]["role"] == "tool"
