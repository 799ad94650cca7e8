"""A run's cost, estimated before any call, and the plan cut to fit a budget.

Input tokens are counted as our usage estimates count them; each call's output is taken at its cap: the
request's `max_tokens`/`max_completion_tokens`, else its model's configured one, else DEFAULT_OUTPUT.
Fallbacks are not priced: the estimate is of the models the plan names first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Catalogue, LayerPlan, output_cap
from moa_gateway.core.reports import BudgetReport
from moa_gateway.core.tokens import count_prompt_tokens

DEFAULT_OUTPUT = 1024  # output tokens assumed for a call nothing caps
CAP_STEPS = (512, 256, 128, 64)  # proposers' max_tokens tried in turn when dropping proposers is not enough


@dataclass(frozen=True)
class BudgetFit:
    layers: list[LayerPlan]
    proposer_cap: int | None  # max_tokens for proposers, if capped
    report: BudgetReport | None = None  # None: no budget applied


def fit_budget(
    catalogue: Catalogue,
    layers: list[LayerPlan],
    aggregator: str,
    messages: list[dict[str, Any]],
    proposer_params: dict[str, Any],
    final_params: dict[str, Any],
    *,
    max_usd: float | None,
    proposer_cap: int | None,
) -> BudgetFit:
    """The layers and proposer cap that fit `max_usd`: the most expensive proposers dropped first (never
    below a layer's `min_proposers`), then proposers' output capped, then the aggregator alone. Raises
    Failure(BUDGET_EXCEEDED) if even that does not fit."""
    if max_usd is None:
        return BudgetFit(layers, proposer_cap)
    prompt = count_prompt_tokens(messages)
    estimator = _Estimator(catalogue, prompt, proposer_params, final_params, aggregator)
    actions: list[str] = []

    cost = estimator.run(layers, proposer_cap)
    while cost > max_usd:
        dearest = estimator.dearest_droppable(layers, proposer_cap)
        if dearest is None:
            break
        number, alias = dearest
        proposers = list(layers[number].proposers)
        proposers.remove(alias)
        layers = [*layers[:number], replace(layers[number], proposers=proposers), *layers[number + 1 :]]
        actions.append(f"dropped proposer {alias} (layer {number + 1})")
        cost = estimator.run(layers, proposer_cap)
    for cap in CAP_STEPS:
        if cost <= max_usd or not layers:
            break
        if proposer_cap is not None and cap >= proposer_cap:
            continue
        proposer_cap = cap
        actions.append(f"capped proposers at max_tokens {cap}")
        cost = estimator.run(layers, proposer_cap)
    if cost > max_usd and layers:
        layers = []
        actions.append("aggregator alone")
        cost = estimator.run(layers, proposer_cap)
    if cost > max_usd:
        raise Failure(
            FailureKind.BUDGET_EXCEEDED,
            f"the request's estimated cost (${cost:.6f}, aggregator alone) is over its budget (${max_usd:g})",
            param="moa.max_cost_usd",
        )
    return BudgetFit(layers, proposer_cap, BudgetReport(max_usd, round(cost, 8), actions))


class _Estimator:
    def __init__(
        self,
        catalogue: Catalogue,
        prompt_tokens: int,
        proposer_params: dict[str, Any],
        final_params: dict[str, Any],
        aggregator: str,
    ) -> None:
        self._models = catalogue.models
        self._prompt = prompt_tokens
        self._proposer_params = proposer_params
        self._final_params = final_params
        self._aggregator = aggregator

    def output(self, alias: str, params: dict[str, Any], cap: int | None, *, proposer: bool) -> int:
        entry = self._models[alias]
        asked, pinned = output_cap(params), entry.output_cap()
        # proposers' own params win over the client's; the final call's client params win
        tokens = ((pinned or asked) if proposer else (asked or pinned)) or DEFAULT_OUTPUT
        return min(tokens, cap) if cap is not None else tokens

    def call(self, alias: str, prompt: int, output: int) -> float:
        entry = self._models[alias]
        return (prompt * entry.input_usd_per_mtok + output * entry.output_usd_per_mtok) / 1_000_000

    def proposer_costs(self, layers: list[LayerPlan], cap: int | None) -> list[list[float]]:
        costs, references = [], 0
        for layer in layers:
            outputs = [self.output(a, self._proposer_params, cap, proposer=True) for a in layer.proposers]
            costs.append(
                [
                    self.call(a, self._prompt + references, out)
                    for a, out in zip(layer.proposers, outputs, strict=True)
                ]
            )
            references = sum(outputs)
        return costs

    def run(self, layers: list[LayerPlan], cap: int | None) -> float:
        references = 0
        if layers:
            references = sum(
                self.output(a, self._proposer_params, cap, proposer=True) for a in layers[-1].proposers
            )
        final = self.call(
            self._aggregator,
            self._prompt + references,
            self.output(self._aggregator, self._final_params, None, proposer=False),
        )
        return final + sum(sum(layer) for layer in self.proposer_costs(layers, cap))

    def dearest_droppable(self, layers: list[LayerPlan], cap: int | None) -> tuple[int, str] | None:
        """The (layer index, alias) of the costliest proposer whose layer can lose one."""
        best: tuple[float, int, str] | None = None
        for number, (layer, costs) in enumerate(zip(layers, self.proposer_costs(layers, cap), strict=True)):
            if len(layer.proposers) <= max(layer.min_proposers, 1):
                continue
            for alias, cost in zip(layer.proposers, costs, strict=True):
                if best is None or cost > best[0]:
                    best = (cost, number, alias)
        return None if best is None else (best[1], best[2])
