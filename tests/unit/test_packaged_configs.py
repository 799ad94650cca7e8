"""The configs the package ships (the demo, the starter `init` writes), `--version`, and what a user
sees when no config is found: what makes an installed wheel usable from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from moa_gateway.cli import main
from moa_gateway.cli.demo import demo_config_path
from moa_gateway.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_demo_config_is_the_packaged_one() -> None:
    # One source of truth: config/moa.yaml (make run, the image, the README) is the packaged file's twin.
    assert (ROOT / "config" / "moa.yaml").read_bytes() == demo_config_path().read_bytes()


def test_the_packaged_demo_config_loads_with_no_keys() -> None:
    config = load_config(demo_config_path(), env={})

    assert {"moa", "moa-lite"} <= set(config.pipelines)
    assert {p.type for p in config.providers.values()} == {"simulated"}


def test_version_is_the_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"moa-gateway {expected}"


def test_init_writes_a_starter_config_whose_keys_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    assert main(["init"]) == 0

    path = tmp_path / "config" / "moa.yaml"  # where `serve` looks by default
    assert f"wrote {Path('config/moa.yaml')}" in capsys.readouterr().out
    text = path.read_text()
    assert text.startswith("#") and "api_key: ${OPENAI_API_KEY}" in text
    config = load_config(path, env={"OPENAI_API_KEY": "sk-test"})
    assert list(config.pipelines) == ["moa"]
    provider = config.providers["upstream"]
    assert provider.type == "openai" and str(provider.base_url).startswith("https://api.openai.com/v1")
    with pytest.raises(ConfigError, match="environment variable OPENAI_API_KEY is not set"):
        load_config(path, env={})


def test_init_never_overwrites_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("providers: {}  # mine\n")

    assert main(["init", str(path)]) == 1

    assert path.read_text() == "providers: {}  # mine\n"
    assert "already exists: not overwritten" in capsys.readouterr().err


def test_serve_without_a_config_names_every_way_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MOA_CONFIG"}

    result = subprocess.run(
        [sys.executable, "-m", "moa_gateway", "serve", "--port", "0"],
        cwd=tmp_path,  # a directory with no config/moa.yaml, as after `pip install`
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("moa-gateway: config/moa.yaml: cannot read the config file (No such file")
    for hint in ("--config", "MOA_CONFIG", "moa-gateway serve --demo", "moa-gateway init"):
        assert hint in line
