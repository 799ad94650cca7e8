"""Vercel's AI SDK on its default OpenAI provider (the Responses API, with `store`, so earlier output
goes back as `item_reference` items), run by Node against the gateway: a 3-turn conversation (the
middle turn streamed), and a tool loop whose aggregator reasons (`rs_...` references, summaries)."""

from __future__ import annotations

from tests.support.gateways import Gateway
from tests.support.node_clients import run_node


def test_a_three_turn_conversation(gateway: Gateway) -> None:
    turns = run_node("ai_sdk.mjs", gateway.base_url, "conversation")["turns"]
    questions = ["Name a colour.", "Why that one?", "Say it again."]
    assert [
        t["text"].startswith(f"[omega] Synthesis of 3 responses on '{q}'")
        for t, q in zip(turns, questions, strict=True)
    ] == [True] * 3
    aggregations = gateway.recorder.sent_to("omega")
    assert len(aggregations) == 3
    last = [m for m in aggregations[-1]["messages"] if m["role"] != "system"]
    assert last == [
        {"role": "user", "content": questions[0]},
        {"role": "assistant", "content": turns[0]["text"]},
        {"role": "user", "content": questions[1]},
        {"role": "assistant", "content": turns[1]["text"]},
        {"role": "user", "content": questions[2]},
    ]


def test_a_tool_loop_with_a_reasoning_aggregator(gateway: Gateway) -> None:
    result = run_node("ai_sdk.mjs", gateway.base_url, "tools")
    first, second = result["steps"]
    assert first["finishReason"] == "tool-calls" and first["toolCalls"] == ["get_weather"]
    assert second["finishReason"] == "stop" and result["text"].endswith(
        "Based on the tool result: 18 C and rain"
    )
    assert len(result["calls"]) == 1
    # the reasoning the client shows is the aggregator's, read from the summary
    assert first["reasoning"].startswith("Thinking about 'What is the weather in Paris?'")
    assert second["reasoning"].startswith("Thinking about 'What is the weather in Paris?'")
    step_two = gateway.recorder.sent_to("reasoner")[-1]["messages"]
    assert [m["role"] for m in step_two if m["role"] != "system"] == ["user", "assistant", "tool"]
    assert step_two[-1]["content"] == "18 C and rain"
