"""`moa-gateway eval`: is the candidate worth it? Answer a dataset with the candidate and the baseline,
have a judge compare them, and write `report.json` and `report.html` to `--out`. In-process through the
chat service (no server needed), or through a running gateway with `--url`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from moa_gateway.config import ConfigError, GatewayConfig, load_config
from moa_gateway.eval.answers import Answerer, HttpAnswerer, ServiceAnswerer
from moa_gateway.eval.cache import AnswerCache, CachedAnswerer, config_fingerprint
from moa_gateway.eval.dataset import DatasetError, load_dataset
from moa_gateway.eval.judge import PromptFileError, load_prompt
from moa_gateway.eval.progress import Progress
from moa_gateway.eval.report import summary_lines, write_report
from moa_gateway.eval.runner import EvalSpec, ItemResult, run_eval
from moa_gateway.eval.summary import summarise
from moa_gateway.runtime import open_runtime
from moa_gateway.settings import Settings
from moa_gateway.telemetry.logs import configure_logging
from moa_gateway.telemetry.metrics import Metrics


def add_parser(commands: Any) -> None:
    """Register `eval` on the CLI's subcommands."""
    parser = commands.add_parser("eval", help="A/B-evaluate a candidate against a baseline with a judge")
    parser.add_argument("--config", help="YAML config (default: $MOA_CONFIG or config/moa.yaml)")
    parser.add_argument(
        "--dataset", required=True, type=Path, help="JSON lines: prompts or MT-Bench questions"
    )
    parser.add_argument("--candidate", required=True, help="model id to evaluate (a pipeline or a model)")
    parser.add_argument("--baseline", required=True, help="model id to compare it with")
    parser.add_argument("--judge", required=True, help="model id of the judge")
    parser.add_argument("--mode", choices=["pairwise", "single"], default="pairwise")
    parser.add_argument("--concurrency", type=int, default=8, help="items evaluated at once")
    parser.add_argument("--limit", type=int, help="only the first N items")
    parser.add_argument("--out", type=Path, default=Path("eval-results"), help="report and cache folder")
    parser.add_argument("--judge-prompt", type=Path, help="your own judge prompt file for the mode")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the answer cache")
    parser.add_argument("--url", help="a running gateway to evaluate through, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", help="its gateway key (default: $MOA_EVAL_API_KEY)")
    parser.add_argument("--seed", type=int, default=0, help="of the bootstrap resampling")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    configure_logging("warning")
    try:
        report = asyncio.run(evaluate(args))
    except (ConfigError, DatasetError, PromptFileError, ValueError, OSError) as exc:
        print(f"moa-gateway eval: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\nmoa-gateway eval: interrupted; the answers so far are cached in {args.out / 'cache'}: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print("\n".join(summary_lines(report)))
    print(f"  report: {args.out / 'report.html'} (and report.json)")
    return 0 if report["judged"] else 1


async def evaluate(args: argparse.Namespace, metrics: Metrics | None = None) -> dict[str, Any]:
    """Run the eval `args` describe, write its report, and return it (the report's JSON)."""
    if args.concurrency < 1:
        raise ValueError("--concurrency is at least 1")
    items = load_dataset(args.dataset, args.limit)
    prompt = load_prompt(args.mode, args.judge_prompt)
    spec = EvalSpec(args.candidate, args.baseline, args.judge, args.mode, args.concurrency)
    settings = Settings(**({"config": args.config} if args.config else {}))
    config = None if args.url else load_config(settings.config)
    if config is not None:
        known = {*config.models, *config.pipelines}
        for flag, model in (
            ("candidate", spec.candidate),
            ("baseline", spec.baseline),
            ("judge", spec.judge),
        ):
            if model not in known:
                raise ConfigError(
                    f"--{flag}: {model!r} is neither a pipeline nor a model of {settings.config}"
                )
    progress = None if args.quiet else Progress(len(items))

    def done(result: ItemResult) -> None:
        if progress is not None:
            progress.advance(failed=result.outcome is None)

    async with _answerers(args, settings, config, metrics or Metrics()) as (answers, judge):
        if not args.no_cache:
            cache = AnswerCache(args.out / "cache" / "answers.jsonl")
            fingerprint = config_fingerprint(config) if config is not None else (lambda model: args.url)
            answers = CachedAnswerer(answers, cache, fingerprint)
            judge = CachedAnswerer(judge, cache, fingerprint)
        results = await run_eval(items, spec, answers, judge, prompt, done)
    report = summarise(results, spec, str(args.dataset), args.seed)
    write_report(report, args.out)
    return report


@asynccontextmanager
async def _answerers(
    args: argparse.Namespace, settings: Settings, config: GatewayConfig | None, metrics: Metrics
) -> AsyncIterator[tuple[Answerer, Answerer]]:
    """(answers, judge): in-process, the judge's calls are counted with role `judge`."""
    if config is None:
        key = args.api_key or os.environ.get("MOA_EVAL_API_KEY")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        timeout = httpx.Timeout(600.0, connect=10.0)
        async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=timeout) as client:
            gateway = HttpAnswerer(client)
            yield gateway, gateway
        return
    async with open_runtime(settings, config, metrics) as runtime:
        yield ServiceAnswerer(runtime.chat), ServiceAnswerer(runtime.chat_as("judge"))
