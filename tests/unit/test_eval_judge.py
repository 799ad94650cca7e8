"""Judge prompts and verdicts: the prompt files, parsing Arena-Hard labels and MT-Bench ratings, the one
retry of an unparseable verdict, and the simulator answering the shipped prompts with verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa_gateway.core.types import Message
from moa_gateway.eval.answers import Answered
from moa_gateway.eval.judge import (
    PromptFileError,
    candidate_score,
    load_prompt,
    parse_pairwise,
    parse_rating,
)
from moa_gateway.eval.runner import judge_game
from moa_gateway.sim import core
from moa_gateway.sim.judge import PAIRWISE_MARKERS, SINGLE_MARKERS

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("My final verdict is: [[A>>B]]", "A>>B"),
        ("Slightly better: [[A>B]].", "A>B"),
        ("tie [[A=B]]", "A=B"),
        ("[[B>A]]", "B>A"),
        ("[[ B >> A ]]", "B>>A"),
        ("[[A<B]]", "B>A"),  # the same verdict written the other way round
        ("[[A<<B]]", "B>>A"),
        ("[[B=A]]", "A=B"),
        ("First [[A>B]], and finally [[A>B]]", "A>B"),  # repeated, not contradicted
    ],
)
def test_pairwise_labels_parse(reply: str, label: str) -> None:
    assert parse_pairwise(reply) == label


@pytest.mark.parametrize(
    "reply", ["A is better", "[A>B]", "[[A>B]] no wait [[B>A]]", "[[A>A]]", "[[C>B]]", ""]
)
def test_missing_or_contradictory_pairwise_verdicts_do_not_parse(reply: str) -> None:
    assert parse_pairwise(reply) is None


def test_scores_are_from_the_candidates_side() -> None:
    assert candidate_score("A>>B", candidate_is_a=True) == 2
    assert candidate_score("A>>B", candidate_is_a=False) == -2
    assert candidate_score("B>A", candidate_is_a=False) == 1
    assert candidate_score("A=B", candidate_is_a=False) == 0


@pytest.mark.parametrize(
    ("reply", "rating"),
    [("Rating: [[7]]", 7.0), ("[[8.5]]", 8.5), ("Rating: [6]", 6.0), ("[[3]] then [[9]]", 9.0)],
)
def test_ratings_parse(reply: str, rating: float) -> None:
    assert parse_rating(reply) == rating


@pytest.mark.parametrize("reply", ["Rating: 7", "[[0]]", "[[11]]", "[[seven]]"])
def test_missing_or_out_of_range_ratings_do_not_parse(reply: str) -> None:
    assert parse_rating(reply) is None


def test_the_pairwise_prompt_renders_both_answers_and_the_reference_only_when_given() -> None:
    prompt = load_prompt("pairwise")

    plain = prompt.messages("What is 2+2?", ("four {answer_b}", "5"))
    with_reference = prompt.messages("What is 2+2?", ("four", "5"), reference="4")

    assert [m["role"] for m in plain] == ["system", "user"]
    user = plain[1]["content"]
    assert "What is 2+2?" in user
    assert "<|The Start of Assistant A's Answer|>\nfour {answer_b}\n" in user  # a value is not expanded
    assert "Reference" not in user
    assert (
        "<|The Start of Reference Answer|>\n4\n<|The End of Reference Answer|>"
        in with_reference[1]["content"]
    )
    assert "[[A>>B]]" in plain[0]["content"]


def test_a_prompt_file_missing_a_placeholder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("### system\nJudge.\n### user\n{question}\n{answer_a}\n")

    with pytest.raises(PromptFileError, match=r"\{answer_b\}"):
        load_prompt("pairwise", path)


def test_shipped_prompts_carry_the_markers_the_simulator_recognises() -> None:
    pairwise = load_prompt("pairwise").messages("q", ("a", "b"))[-1]["content"]
    single = load_prompt("single").messages("q", "a")[-1]["content"]

    assert all(marker in pairwise for pair in PAIRWISE_MARKERS for marker in pair)
    assert all(marker in single for marker in SINGLE_MARKERS)


async def sim_reply(messages: list[Message], **simulate: object) -> str:
    body = {"model": "judge", "messages": messages, "simulate": simulate}
    content = (await core.complete(body, FAST))["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    return content


SHORT = "[alpha] On 'why': sky blue"
LONG = "[omega] Synthesis of 3 responses: light scatters off molecules, shorter wavelengths scatter more, so"


async def test_the_simulated_judge_is_consistent_across_orders_and_deterministic() -> None:
    prompt = load_prompt("pairwise")

    forward = parse_pairwise(await sim_reply(prompt.messages("why?", (LONG, SHORT))))
    backward = parse_pairwise(await sim_reply(prompt.messages("why?", (SHORT, LONG))))

    assert forward is not None and backward is not None
    assert candidate_score(forward, True) == candidate_score(backward, False) > 0  # the richer answer wins
    assert forward == parse_pairwise(await sim_reply(prompt.messages("why?", (LONG, SHORT))))


async def test_the_simulated_judge_can_be_steered() -> None:
    prompt = load_prompt("pairwise")
    pair = prompt.messages("why?", (LONG, SHORT))

    assert parse_pairwise(await sim_reply(pair, verdict="B>A")) == "B>A"
    assert parse_pairwise(await sim_reply(pair, prefer="alpha")) == "B>>A"
    assert parse_pairwise(await sim_reply(pair, verdict="unparseable")) is None
    assert parse_rating(await sim_reply(load_prompt("single").messages("why?", SHORT), rating=3)) == 3
    with pytest.raises(core.SimulatorRequestError, match=r"simulate\.verdict"):
        await sim_reply(pair, verdict="A>>>B")


async def test_the_simulated_judge_grades_single_answers_from_1_to_10() -> None:
    rating = parse_rating(await sim_reply(load_prompt("single").messages("why?", LONG, reference="Rayleigh")))

    assert rating is not None and 1 <= rating <= 10


async def test_a_normal_prompt_still_gets_a_normal_answer() -> None:
    assert (await sim_reply([{"role": "user", "content": "Why is the sky blue?"}])).startswith("[judge] On")


class ScriptedJudge:
    """Answers each call with the next scripted reply, and records the messages it was sent."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.asked: list[list[Message]] = []

    async def answer(self, model: str, messages: list[Message]) -> Answered:
        self.asked.append(messages)
        return Answered(self.replies.pop(0), 0.001, 10, 5, 0.0)


async def test_an_unparseable_verdict_is_asked_for_once_more_with_a_reminder() -> None:
    judge = ScriptedJudge("I like both.", "My final verdict is [[B>A]]")
    messages = load_prompt("pairwise").messages("q", ("a", "b"))

    game = await judge_game(judge, "judge", "pairwise", "candidate_a", messages)

    assert game.label == "B>A" and len(game.replies) == 2
    assert judge.asked[1][-1]["content"].startswith(messages[-1]["content"])
    assert "final verdict" in judge.asked[1][-1]["content"][len(messages[-1]["content"]) :]


async def test_a_verdict_unparseable_twice_is_left_unparsed_after_two_calls() -> None:
    judge = ScriptedJudge("Hmm.", "Still thinking.", "never asked")

    game = await judge_game(judge, "judge", "single", "candidate", load_prompt("single").messages("q", "a"))

    assert not game.parsed and len(judge.asked) == 2
