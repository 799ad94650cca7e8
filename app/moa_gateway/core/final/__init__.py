"""The final phase, one module per aggregation strategy, chosen by the pipeline's `aggregation` name.

Adding a strategy: a module with an async generator `(Finishing, Proposals, FinalOutcome) -> events`
and one line in FINALIZERS (the config accepts every name listed here). The schema retry wraps any."""

from __future__ import annotations

from moa_gateway.core.final.base import Finalizer, FinalOutcome, Finishing, Proposals
from moa_gateway.core.final.rank import rank
from moa_gateway.core.final.schema_retry import schema_checked
from moa_gateway.core.final.select import select
from moa_gateway.core.final.sequential import sequential
from moa_gateway.core.final.synthesize import synthesize

FINALIZERS: dict[str, Finalizer] = {
    "synthesize": synthesize,
    "select": select,
    "sequential": sequential,
    "rank": rank,
}
AGGREGATIONS = tuple(FINALIZERS)  # the names a pipeline's `aggregation` may take


def finalizer_for(aggregation: str, *, checked: bool) -> Finalizer:
    """The strategy named, with the schema check and retry around it when the run has a schema to
    check (without one, the wrapper would only re-yield every event)."""
    strategy = FINALIZERS[aggregation]
    return schema_checked(strategy) if checked else strategy


__all__ = [
    "AGGREGATIONS",
    "FINALIZERS",
    "FinalOutcome",
    "Finalizer",
    "Finishing",
    "Proposals",
    "finalizer_for",
]
