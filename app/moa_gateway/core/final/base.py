"""What every finalizer shares: where the final phase stands (`Finishing`), what it came to
(`FinalOutcome`), and the `Finalizer` signature the registry keys by aggregation name."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from moa_gateway.core.chain import ChainWalker, Slot, Step
from moa_gateway.core.events import Event, FinalDelta
from moa_gateway.core.plan import Catalogue, ModelEntry, Plan
from moa_gateway.core.reports import RankingReport
from moa_gateway.core.types import Answer, CallRecord, Delta, Message, RunInput

Proposals = list[tuple[str, Answer]]  # (the model that answered, its answer), in slot order


@dataclass
class FinalOutcome:
    """What the final phase came to: the final call's slot and messages, or the proposal chosen."""

    slots: list[Slot] = field(default_factory=list)  # of every call the phase made, in order
    final: Slot | None = None
    messages: list[Message] = field(default_factory=list)  # what the final call was sent
    chosen: int | None = None  # index into the last layer's proposals
    problem: str | None = None  # why the final answer does not fit the requested schema
    rankings: RankingReport | None = None  # what the peer ranking came to (`aggregation: rank`)

    @property
    def records(self) -> list[CallRecord]:
        """Every call the phase made, in order."""
        return [record for slot in self.slots for record in slot.records]


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class Finishing:
    """The final phase's setting: the run, the chain that answers (aggregator or escalation, then
    fallbacks), whether the answer streams, and the pipeline deadline."""

    walker: ChainWalker
    catalogue: Catalogue
    plan: Plan
    run: RunInput
    chain: list[str]
    stream: bool
    deadline: float | None

    @property
    def readers(self) -> list[ModelEntry]:
        """The models that read the references: the chain's first."""
        return [self.catalogue.models[self.chain[0]]]

    def call(
        self,
        messages: list[Message],
        params: dict[str, Any],
        outcome: FinalOutcome,
        *,
        advisory: bool = False,
    ) -> AsyncGenerator[Event, None]:
        """One walk of the chain into a new slot, kept in `outcome`. An advisory call (a selection, a
        round that prepares the final call) neither streams nor counts as the answer. The walk's own
        generator: every event of the answer (each streamed token) passes one generator fewer than
        through one re-yielding it; `outcome` is set as the walk starts, as nothing reads it before
        the walk ends (a walk that raises ends the run)."""
        step = Step(
            self.plan.final_layer,
            self.plan.final_role,
            final=True,
            stream=self.stream,
            deadline=self.deadline,
        )
        if advisory:
            step = replace(step, final=False, stream=False)
        slot = Slot(self.chain[0])
        outcome.slots.append(slot)
        outcome.final, outcome.messages = slot, messages
        return self.walker.walk(self.chain, messages, params, slot, step)

    def choose(self, proposals: Proposals, index: int, outcome: FinalOutcome) -> list[Event]:
        """A proposal is the answer as it is; when streaming, it goes out whole."""
        outcome.chosen, outcome.final = index, None
        return [FinalDelta(Delta(text=proposals[index][1].text))] if self.stream else []


Finalizer = Callable[[Finishing, Proposals, FinalOutcome], AsyncGenerator[Event, None]]
