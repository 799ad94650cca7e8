"""Peer ranking for `aggregation: rank`: which proposals each reviewer is shown, in what order, how its
ranking is read from its answer, and how the rankings add up (a Borda count).

A reviewer never sees its own proposal, and sees the others anonymised (numbered, no model names) in an
order shuffled for it alone: seeded by the request and the reviewer, so a position bias does not favour
the same proposal in every ranking, and the same request is shuffled the same way again."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moa_gateway.core.prompts import final_answer
from moa_gateway.core.reports import RankedProposal

RANK_PROMPT = (
    "You have been provided with a set of anonymous responses to the latest user query. Your task is to "
    "rank them from best to worst: the most accurate, complete and helpful response first. Do not write a "
    "new response. Reply with only the numbers of all the responses, best first, in double brackets, for "
    "example [[2, 3, 1]]."
    "\n\nResponses from models:"
)
_BRACKETS = re.compile(r"\[\[([^\[\]]*)\]\]")
_BARE = re.compile(r"[\d\s,>.;]+")  # a reply of numbers and separators only: "2, 3, 1", "2 > 1 > 3"
_NUMBER = re.compile(r"\d+")


class MalformedRanking(ValueError):
    """A reviewer's answer holds no usable ranking: the message says why."""


@dataclass(frozen=True)
class Review:
    """One reviewer's task: the model, and the proposals it is shown (their indexes, in shown order)."""

    reviewer: str
    shown: list[int]


def request_seed(messages: list[dict[str, Any]], texts: Sequence[str], params: dict[str, Any]) -> str:
    """The seed of a request's shuffles: its conversation, its proposals and the client's `seed`."""
    material = {"messages": messages, "proposals": list(texts), "seed": params.get("seed")}
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def shuffled(indexes: list[int], seed: str, position: int) -> list[int]:
    """`indexes` in the order reviewer number `position` (0-based) of the request sees them."""
    order = list(indexes)
    random.Random(f"{seed}/{position}").shuffle(order)
    return order


def plan_reviews(authors: list[str], reviewers: Sequence[str] | None, seed: str) -> list[Review]:
    """Each reviewer's task. By default the proposers review: the author of proposal i sees the others.
    A configured reviewer sees every proposal but those its own model wrote. A reviewer left with fewer
    than two proposals to rank is not asked."""
    if reviewers is None:
        tasks = [(author, {i}) for i, author in enumerate(authors)]
    else:
        tasks = [(alias, {i for i, author in enumerate(authors) if author == alias}) for alias in reviewers]
    reviews = []
    for position, (alias, own) in enumerate(tasks):
        others = [i for i in range(len(authors)) if i not in own]
        if len(others) >= 2:
            reviews.append(Review(alias, shuffled(others, seed, position)))
    return reviews


def read_ranking(text: str, count: int) -> list[int]:
    """The 0-based positions (in the order shown) a reviewer ranked, best first, from its answer: the
    last `[[...]]` in it, or an answer of numbers alone. A partial ranking is kept (the unranked get no
    points); raises MalformedRanking for none, a number not shown, or one named twice."""
    answer = final_answer(text).strip()
    found = _BRACKETS.findall(answer)
    if found:
        inside = found[-1]
    elif answer and _BARE.fullmatch(answer):
        inside = answer
    else:
        raise MalformedRanking("no ranking in its answer")
    numbers = [int(n) for n in _NUMBER.findall(inside)]
    if not numbers:
        raise MalformedRanking("no ranking in its answer")
    for number in numbers:
        if not 1 <= number <= count:
            raise MalformedRanking(f"it ranks {number}, not one of the {count} responses shown")
        if numbers.count(number) > 1:
            raise MalformedRanking(f"it ranks {number} twice")
    return [number - 1 for number in numbers]


def borda(authors: list[str], ballots: list[tuple[Review, list[int]]]) -> list[RankedProposal]:
    """Every proposal, best first: a ranking of m proposals gives the first m points, the next m - 1, and
    so on down to 1 (the unranked get none); a proposal's points are the sum over the rankings counted.
    Ties go to the earlier proposal."""
    points = [0] * len(authors)
    for review, ranked in ballots:
        size = len(review.shown)
        for place, position in enumerate(ranked):
            points[review.shown[position]] += size - place
    order = sorted(range(len(authors)), key=lambda i: (-points[i], i))
    return [RankedProposal(i, authors[i], points[i], rank) for rank, i in enumerate(order, 1)]
