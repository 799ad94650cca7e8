"""Hostile `response_format` schemas against the real gateway (`moa-gateway serve`, its own process, so
nothing in the test shares its interpreter) and a scripted upstream on 127.0.0.1, through the openai
SDK: a `$ref` never makes the gateway fetch anything (a 400 before any upstream call), and no schema or
answer stops the gateway from answering `/healthz`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import openai
import pytest
import yaml

from tests.support.cli import free_port, serve, wait_ready
from tests.support.configs import SIM_KEY, topology
from tests.support.raw_upstream import RawUpstream, completion, json_body

T = TypeVar("T")
PARAM = "response_format.json_schema.schema"
CHECK_TIMEOUT_S = 1.0
HEALTHZ_S = 1.0  # the bound the gateway must answer /healthz within, whatever a request does


class Listener:
    """A TCP listener on 127.0.0.1 that answers any connection with a JSON schema over HTTP and records
    that it was contacted: a gateway that fetched a `$ref` would get a schema it could use."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.contacts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def _serve(self) -> None:
        body = b'{"type": "string"}'
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.contacts += 1
            with connection:
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n%s" % (len(body), body)
                )


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    with RawUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway's URL."""
    config = tmp_path_factory.mktemp("schema") / "moa.yaml"
    provider = {"type": "openai", "base_url": upstream.url, "api_key": SIM_KEY, "timeout_s": 10}
    config.write_text(yaml.safe_dump({"providers": {"remote": provider}, **topology("remote")}))
    port = free_port()
    process = serve(config, port, {"MOA_SCHEMA_CHECK_TIMEOUT_S": str(CHECK_TIMEOUT_S)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.kill()
        process.communicate()


@pytest.fixture
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0, timeout=60) as sdk:
        yield sdk


def ask(client: openai.OpenAI, schema: dict[str, Any], model: str = "moa-1") -> Any:
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    )


def with_healthz(gateway: str, work: Callable[[], T]) -> tuple[T, list[float]]:
    """`work()`'s result, and how long each /healthz took while it ran (one every 50 ms); a /healthz
    with no answer within HEALTHZ_S counts as HEALTHZ_S."""
    latencies: list[float] = []
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=HEALTHZ_S) as http:
        running = pool.submit(work)
        while not running.done():
            start = time.monotonic()
            try:
                http.get(f"{gateway}/healthz").raise_for_status()
                latencies.append(time.monotonic() - start)
            except httpx.TimeoutException:
                latencies.append(HEALTHZ_S)
            time.sleep(0.05)
        return running.result(), latencies


def refused(client: openai.OpenAI, schema: dict[str, Any]) -> dict[str, Any]:
    """The 400 the gateway answers `schema` with (fails the test on any other outcome)."""
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, schema)
    body = caught.value.body
    assert isinstance(body, dict), body
    assert body["param"] == PARAM and body["type"] == "invalid_request_error", body
    return body


def remote_refs(port: int) -> list[dict[str, Any]]:
    here = f"127.0.0.1:{port}"
    prop: Callable[[str], dict[str, Any]] = lambda ref: {  # noqa: E731
        "type": "object",
        "properties": {"x": {"$ref": ref}},
    }
    return [
        prop(f"http://{here}/schema.json"),
        prop(f"https://{here}/schema.json"),
        prop(f"http://{here}/schema.json#/definitions/x"),
        {"$id": f"http://{here}/root.json", **prop("other.json")},  # relative to the root's $id
        {"$defs": {"x": {"$id": f"http://{here}/d/", "$ref": "x.json"}}, **prop("#/$defs/x")},
        prop("file:///etc/hostname"),
        {"type": "object", "properties": {"x": {"$dynamicRef": f"http://{here}/schema.json"}}},
    ]


@pytest.mark.parametrize("case", range(len(remote_refs(0))))
def test_a_remote_ref_is_a_400_before_any_call_and_nothing_is_fetched(
    client: openai.OpenAI, upstream: RawUpstream, case: int
) -> None:
    upstream.seen.clear()
    upstream.next_answer = json_body(completion('{"x": 5}'))
    with Listener() as listener:
        schema = remote_refs(listener.port)[case]

        body = refused(client, schema)
        time.sleep(0.2)  # a fetch in the background would have connected by now

        assert "cannot be resolved" in body["message"] and "nothing is retrieved" in body["message"]
        assert listener.contacts == 0, "the gateway reached out for a $ref"
    assert upstream.seen == [], "refused before any upstream call"


def test_a_remote_ref_through_the_responses_api_is_refused_too(
    client: openai.OpenAI, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    with Listener() as listener:
        schema = remote_refs(listener.port)[0]
        with pytest.raises(openai.BadRequestError):
            client.responses.create(
                model="moa-1",
                input="Answer in JSON.",
                text={"format": {"type": "json_schema", "name": "answer", "schema": schema}},
            )
        time.sleep(0.2)
        assert listener.contacts == 0
    assert upstream.seen == []


def test_a_pointer_to_nowhere_is_a_400_before_any_call(client: openai.OpenAI, upstream: RawUpstream) -> None:
    upstream.seen.clear()
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}, "$defs": {}}

    body = refused(client, schema)

    assert "'#/$defs/missing' cannot be resolved: it points to nothing in the schema" in body["message"]
    assert upstream.seen == []


def test_local_refs_and_recursion_still_check_answers(client: openai.OpenAI, upstream: RawUpstream) -> None:
    node: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["name", "children"],
    }
    schema = {**node, "properties": {**node["properties"], "tag": {"$ref": "#/$defs/tag"}}}
    schema["$defs"] = {"tag": {"enum": ["a", "b"]}}
    upstream.next_answer = json_body(
        completion('{"name": "root", "children": [{"name": 5, "children": []}]}')
    )
    upstream.seen.clear()

    response = ask(client, schema)

    # the aggregator's answer did not fit: it was asked once more, told where
    assert upstream.seen.count("omega") == 2
    assert response.choices[0].message.content is not None


def test_a_backtracking_pattern_does_not_freeze_the_gateway(
    client: openai.OpenAI, gateway: str, upstream: RawUpstream
) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    answer = '{"s": "' + "a" * 40 + '!"}'
    upstream.next_answer = json_body(completion(answer))
    upstream.seen.clear()

    response, latencies = with_healthz(gateway, lambda: ask(client, schema))

    assert max(latencies) < HEALTHZ_S, latencies
    assert response.choices[0].message.content == answer, "no verdict in time: passed on unchecked"
    assert upstream.seen.count("omega") == 1, "no corrective call for an answer that could not be checked"


def fan_out(levels: int, width: int) -> dict[str, Any]:
    """A small schema whose `$ref`s fan out width^levels ways: each definition refers to the next
    `width` times (20 levels of 4: 2^40 in 1.5 KB)."""
    defs: dict[str, Any] = {f"{i}": {"allOf": [{"$ref": f"#/$defs/{i + 1}"}] * width} for i in range(levels)}
    defs[f"{levels}"] = {"type": "string"}
    return {"$defs": defs, "$ref": "#/$defs/0"}


def huge(size: int) -> dict[str, Any]:
    """A plain object schema of about `size` bytes (60k properties for 1.8 MiB)."""
    count = size // 31
    return {"type": "object", "properties": {f"field_{i:06d}": {"type": "string"} for i in range(count)}}


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        (fan_out(20, 4), "more than 20000 subschemas once its $refs are followed"),
        (huge(int(1.8 * 1024 * 1024)), "larger than 1048576 bytes of JSON"),
        (huge(300 * 1024), "more than 5000 object properties in all"),
    ],
    ids=["ref-fan-out-2^40", "1.8MiB", "10k-properties"],
)
def test_a_schema_too_big_to_check_is_a_400_and_does_not_freeze_the_gateway(
    client: openai.OpenAI, gateway: str, upstream: RawUpstream, schema: dict[str, Any], why: str
) -> None:
    upstream.next_answer = json_body(completion('"text"'))
    upstream.seen.clear()

    body, latencies = with_healthz(gateway, lambda: refused(client, schema))

    assert why in body["message"]
    assert not latencies or max(latencies) < HEALTHZ_S, latencies
    assert upstream.seen == []
