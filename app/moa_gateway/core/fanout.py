"""`fanout: user_turn`: the proposers answer once per user turn.

An agent loop calls the gateway once per tool iteration, each time with the same conversation up to the
last user message and only assistant and tool messages after it. Under `user_turn` the proposers are
asked about the conversation up to and including the last user message; their answers are kept under a
key naming the caller, the pipeline, the proposers and their parameters and that conversation, and a
later call of the same turn reuses them: only the final phase runs, on the whole conversation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace

from moa_gateway.core.caller import Caller
from moa_gateway.core.events import Event
from moa_gateway.core.panel_store import KeptPanel, PanelStore
from moa_gateway.core.plan import Catalogue, Plan
from moa_gateway.core.policies import ESCALATED
from moa_gateway.core.preflight import Preflight
from moa_gateway.core.proposing import Panel, Proposing, measured, propose
from moa_gateway.core.types import RunInput

_TURN_ROLES = frozenset({"assistant", "tool", "function"})  # what may follow the user message in a turn


@dataclass(frozen=True)
class Turn:
    """A user turn: its key, and the run as the proposers see it (the conversation to the user message)."""

    key: str
    run: RunInput


def user_turn(
    plan: Plan, run: RunInput, caller: Caller, checked: Preflight, catalogue: Catalogue
) -> Turn | None:
    """The turn this call belongs to under `fanout: user_turn`; None otherwise (another fan-out, no
    proposers, no user message, or something other than assistant and tool messages after the last one:
    then the proposers answer as on every call)."""
    if plan.policy.fanout != "user_turn" or not checked.layers:
        return None
    messages = run.messages
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)
    if last is None or any(m.get("role") not in _TURN_ROLES for m in messages[last + 1 :]):
        return None
    # The proposers' view renders the conversation message for message, with at most one instruction
    # message put first (app/moa_gateway/core/advice.py): its turn ends at the same place, shifted by it.
    shift = len(run.proposer_messages) - len(messages)
    if shift not in (0, 1):
        return None
    asked = run.proposer_messages[: last + 1 + shift]
    material = {
        "caller": caller.id,
        "pipeline": plan.pipeline,
        "layers": [
            [[alias, catalogue.models[alias].params] for alias in layer.proposers] for layer in checked.layers
        ],
        "params": run.proposer_params,
        "output_cap": checked.proposer_cap,
        "prompt": plan.prompt,
        "references": plan.policy.references,
        "asked": asked,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    key = hashlib.sha256(text.encode()).hexdigest()
    return Turn(key, replace(run, proposer_messages=asked))


def proposed(
    setup: Proposing, plan: Plan, run: RunInput, panel: Panel, turn: Turn | None, store: PanelStore
) -> AsyncGenerator[Event, None]:
    """The proposer phase, then how far the proposals agree (`panel.agreement`, and an event). On every
    call without a turn: then propose's own generator, so each proposer event passes one generator
    fewer (a layer of re-yielding costs about a microsecond an event)."""
    if turn is None:
        return propose(setup, plan, run, panel)
    return _turn_proposed(setup, plan, panel, turn, store)


async def _turn_proposed(
    setup: Proposing, plan: Plan, panel: Panel, turn: Turn, store: PanelStore
) -> AsyncGenerator[Event, None]:
    """The turn's kept panel if there is one (no call made, `panel.reused` set), or the proposers asked
    about the turn and their panel kept, before their agreement goes out."""
    kept = await store.get(turn.key)
    if kept is not None:
        panel.proposals, panel.reused, panel.layer = list(kept.proposals), True, kept.layer
        panel.early_exit = ESCALATED if kept.escalated else None
    else:
        async with contextlib.aclosing(propose(setup, plan, turn.run, panel, measure=False)) as events:
            async for event in events:
                yield event
        if panel.proposals:
            escalated = panel.early_exit is not None and panel.early_exit.escalated
            await store.put(turn.key, KeptPanel(tuple(panel.proposals), escalated, panel.layer))
    for event in measured(plan, panel):
        yield event
