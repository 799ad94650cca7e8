"""An eval's results summed up as the report's JSON: win / tie / loss rates with bootstrap 95% intervals,
scores, per-category rates, and cost, tokens and latency of the candidate, the baseline and the judge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moa_gateway.eval.runner import EvalSpec, ItemResult, Transcript
from moa_gateway.eval.stats import OUTCOMES, Outcome, bootstrap_mean, bootstrap_rates, mean, percentile, rates

_QUALITY = {"win": 1.0, "tie": 0.5, "loss": 0.0}  # a pairwise item's worth to the candidate


def summarise(results: list[ItemResult], spec: EvalSpec, dataset: str, seed: int = 0) -> dict[str, Any]:
    judged = [r for r in results if r.outcome is not None]
    report: dict[str, Any] = {
        "candidate": spec.candidate,
        "baseline": spec.baseline,
        "judge": spec.judge,
        "mode": spec.mode,
        "dataset": dataset,
        "items": len(results),
        "judged": len(judged),
        **_rates(judged, seed),
        "inconsistent": sum(1 for r in judged if r.inconsistent),
        "unparseable": sum(1 for r in results if r.unparseable),
        "errors": sum(1 for r in results if r.error is not None),
        "scores": _scores(judged, spec, seed),
        "sides": {
            "candidate": _side([r.candidate for r in results if r.candidate is not None]),
            "baseline": _side([r.baseline for r in results if r.baseline is not None]),
            "judge": _judge(results),
        },
        "categories": {
            category: {
                "items": len(members),
                "judged": sum(1 for r in members if r.outcome is not None),
                **_rates([r for r in members if r.outcome is not None], seed),
                "scores": _scores([r for r in members if r.outcome is not None], spec, seed),
                "candidate_cost_per_answer_usd": mean([r.candidate.cost_usd for r in members if r.candidate]),
                "baseline_cost_per_answer_usd": mean([r.baseline.cost_usd for r in members if r.baseline]),
            }
            for category, members in _by_category(results).items()
        },
        "results": [_item(r) for r in results],
    }
    return report


def _rates(judged: list[ItemResult], seed: int) -> dict[str, Any]:
    outcomes: list[Outcome] = [r.outcome for r in judged if r.outcome is not None]
    shares, intervals = rates(outcomes), bootstrap_rates(outcomes, seed=seed)
    found: dict[str, Any] = {}
    for outcome in OUTCOMES:
        found[f"{outcome}_rate"] = shares[outcome]
        found[f"{outcome}_rate_ci"] = list(intervals[outcome])
    return found


def _scores(judged: list[ItemResult], spec: EvalSpec, seed: int) -> dict[str, Any]:
    """Quality on one scale for both sides: pairwise, the share of the item won (a tie is half each);
    single, the mean rating (1..10). Each with its bootstrap 95% interval."""
    if spec.mode == "pairwise":
        worth = [_QUALITY[r.outcome] for r in judged if r.outcome is not None]
        preference = [p for r in judged if (p := r.preference) is not None]
        return {
            "scale": "share of wins, ties counted half (0..1)",
            "candidate": mean(worth),
            "candidate_ci": _listed(bootstrap_mean(worth, seed=seed)),
            "baseline": mean([1 - w for w in worth]),
            "baseline_ci": _listed(bootstrap_mean([1 - w for w in worth], seed=seed)),
            "mean_preference": mean(preference),
            "mean_preference_ci": _listed(bootstrap_mean(preference, seed=seed)),
        }
    candidate = [x for r in judged if (x := r.rating("candidate")) is not None]
    baseline = [x for r in judged if (x := r.rating("baseline")) is not None]
    return {
        "scale": "mean rating (1..10)",
        "candidate": mean(candidate),
        "candidate_ci": _listed(bootstrap_mean(candidate, seed=seed)),
        "baseline": mean(baseline),
        "baseline_ci": _listed(bootstrap_mean(baseline, seed=seed)),
    }


def _side(transcripts: Sequence[Transcript]) -> dict[str, Any]:
    latencies = [t.latency_s for t in transcripts]
    return {
        "answers": len(transcripts),
        "calls": sum(len(t.answers) for t in transcripts),
        "cached": sum(1 for t in transcripts for a in t.answers if a.cached),
        "cost_usd": sum(t.cost_usd for t in transcripts),
        "cost_per_answer_usd": mean([t.cost_usd for t in transcripts]),
        "prompt_tokens_per_answer": mean([t.prompt_tokens for t in transcripts]),
        "completion_tokens_per_answer": mean([t.completion_tokens for t in transcripts]),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latencies_s": [round(x, 4) for x in latencies],
    }


def _judge(results: list[ItemResult]) -> dict[str, Any]:
    replies = [reply for r in results for g in r.games for reply in g.replies]
    return {
        "calls": len(replies),
        "cached": sum(1 for reply in replies if reply.cached),
        "retries": sum(1 for r in results for g in r.games if len(g.replies) > 1),
        "cost_usd": sum(reply.cost_usd for reply in replies),
        "cost_per_item_usd": mean([r.judge_cost_usd for r in results if r.games]),
        "prompt_tokens": sum(reply.prompt_tokens for reply in replies),
        "completion_tokens": sum(reply.completion_tokens for reply in replies),
    }


def _item(result: ItemResult) -> dict[str, Any]:
    def side(transcript: Transcript | None) -> dict[str, Any] | None:
        if transcript is None:
            return None
        return {
            "answer": transcript.text,
            "cost_usd": transcript.cost_usd,
            "latency_s": round(transcript.latency_s, 4),
            "prompt_tokens": transcript.prompt_tokens,
            "completion_tokens": transcript.completion_tokens,
        }

    return {
        "id": result.item.id,
        "category": result.item.category,
        "question": result.item.question,
        "outcome": result.outcome,
        "inconsistent": result.inconsistent,
        "unparseable": result.unparseable,
        "error": result.error,
        "preference": result.preference,
        "verdicts": [
            {
                "subject": g.subject,
                "label": g.label,
                "rating": g.rating,
                "attempts": len(g.replies),
                "reply": g.replies[-1].text,
            }
            for g in result.games
        ],
        "candidate": side(result.candidate),
        "baseline": side(result.baseline),
    }


def _by_category(results: list[ItemResult]) -> dict[str, list[ItemResult]]:
    groups: dict[str, list[ItemResult]] = {}
    for result in results:
        groups.setdefault(result.item.category, []).append(result)
    return dict(sorted(groups.items()))


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else list(interval)
