"""A fuzz pass over every route the service serves (from its OpenAPI document): malformed
bodies (not JSON, wrong types, huge, deeply nested, unicode, negative attempts) and hostile
path parts ('..', spaces, very long, unicode) answer 4xx, never 500."""

from __future__ import annotations

import json
import random

import pytest
from service_support import client, db_url, service, unique  # noqa: F401
from test_service_auth import routes

BODIES: list[bytes | None] = [
    None,
    b"",
    b"not json",
    b"{",
    b"[]",
    b"null",
    b"123",
    b'"text"',
    b"{}",
    json.dumps({"info": "x", "run_id": 5}).encode(),
    json.dumps({"run_id": "../../etc", "info": {}}).encode(),
    json.dumps({"attempts": [{"step": "start", "task_id": "1", "attempt": -1}]}).encode(),
    json.dumps({"attempts": [{"step": "..", "task_id": "a/b", "attempt": "zero"}]}).encode(),
    json.dumps({"attempts": "many"}).encode(),
    json.dumps({"attempts": [{"step": "s", "task_id": "1", "attempt": 0, "record": {"artifacts": [1, 2]}}]}).encode(),
    json.dumps({"attempts": [{"step": "s", "task_id": "1", "attempt": 0,
                              "record": {"artifacts": {"x": "notalist"}, "cards": "x"}}]}).encode(),
    json.dumps({"attempts": [{"step": "s", "task_id": "1", "attempt": 2**70}]}).encode(),
    json.dumps({"status": 7, "if_absent": "maybe"}).encode(),
    json.dumps({"add": "x", "remove": [1, 2], "expect": {}}).encode(),
    json.dumps({"add": ["\u0000"], "remove": ["é" * 600]}).encode(),
    json.dumps({"flow": "", "state_machine_arn": "", "schedule": {"expression": 5}}).encode(),
    json.dumps({"flow": "F", "state_machine_arn": "arn", "schedule": {"expression": "cron(1 2 3)"},
                "triggers": "x"}).encode(),
    json.dumps({"parameters": [1, 2]}).encode(),
    json.dumps({"\u2603": "\udbff" if False else "\u2603" * 1000}).encode(),
    ("[" * 5000 + "]" * 5000).encode(),
    ('{"a":' * 3000 + "1" + "}" * 3000).encode(),
    json.dumps({"info": {"x": "y" * (9 * 1024 * 1024)}}).encode(),
    b"\xff\xfe\x00garbage",
    b'{"info": {"x": NaN}, "status": "failed", "finished_at": Infinity, "expires_at": -Infinity}',
    b'{"attempts": [{"step": "s", "task_id": "1", "attempt": 0, "started_at": Infinity}]}',
    b'{"info": {"user": "a\\u0000b"}, "add": ["\\u0000"], "flow": "F", "state_machine_arn": "a\\u0000"}',
    json.dumps({"refreshed_at": 1e300, "expires_at": -1e300, "timeout": -5, "status": "failed",
                "finished_at": 1e300}).encode(),
    json.dumps({"info": {"driver": {"pid": 1, "host": "h", "timeout": -1e300}}}).encode(),
    json.dumps({"info": {"driver": "notadict"}}).encode(),
]
PARTS = ["..", ".", "a b", "x" * 300, "\u2603", "%2e%2e", "-1", "a%2Fb", "%00", "9" * 40]


def concrete(path: str, rng: random.Random, flow: str, run_id: str) -> str:
    values = {"flow": flow, "run_id": run_id, "step": "start", "task_id": "1", "attempt": "0", "name": "dep",
              "stream": "stdout", "card_id": "c"}
    for key, value in values.items():
        if "{" + key + "}" in path:
            path = path.replace("{" + key + "}", rng.choice(PARTS) if rng.random() < 0.5 else value)
    return path


class _valid(random.Random):
    """A chooser that always keeps the valid path part."""

    def random(self) -> float:
        return 1.0


@pytest.mark.slow
def test_every_route_answers_malformed_input_with_4xx(service):  # noqa: F811
    rng = random.Random(1234)
    flow = unique()
    with client(service) as api:
        run_id = api.post(f"/api/v1/flows/{flow}/runs", json={"info": {}}).json()["run_id"]
        served = routes(service.app)
        assert len(served) >= 20
        failures = []
        for method, template in served:
            for body in BODIES:
                path = concrete(template, rng, flow, run_id)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                answer = api.request(method, path, content=body, headers=headers)
                if answer.status_code >= 500:
                    failures.append((method, path[:120], (body or b"")[:60], answer.status_code, answer.text[:200]))
                elif answer.status_code >= 400:
                    assert "detail" in answer.json(), (method, path, answer.text[:200])
            for part in PARTS:  # every path parameter hostile at once
                path = template
                for key in ("flow", "run_id", "step", "task_id", "attempt", "name", "stream", "card_id"):
                    path = path.replace("{" + key + "}", part)
                answer = api.request(method, path, json={})
                # '.' and '..' are resolved by the client (RFC 3986) before they are sent
                accepted = answer.status_code < 400 and part not in (".", "..")
                if answer.status_code >= 500 or (accepted and "{" in template):
                    failures.append((method, path[:120], part[:20], answer.status_code, answer.text[:200]))
            for query in ({"limit": "-5"}, {"offset": "-1"}, {"limit": "x"}, {"ids": ",".join(PARTS)},
                          {"before": ".."}, {"tag": "\u0000"}, {"status": "é"}, {"flow": "../x"}):
                answer = api.request(method, concrete(template, rng, flow, run_id), params=query)
                if answer.status_code >= 500:
                    failures.append((method, template, query, answer.status_code, answer.text[:200]))
        # and what the writes above left behind reads back: every GET with valid path parts
        for method, template in served:
            if method == "GET":
                answer = api.get(concrete(template, _valid(), flow, run_id))
                if answer.status_code >= 500:
                    failures.append(("read back", template, answer.status_code, answer.text[:200]))
    assert failures == [], "\n".join(map(str, failures))


def test_huge_body_is_413(service):  # noqa: F811
    with client(service) as api:
        answer = api.post(f"/api/v1/flows/{unique()}/runs", content=b"x" * (9 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})
        assert answer.status_code == 413 and "larger than" in answer.json()["detail"]

        def chunks():
            for _ in range(10):
                yield b"y" * (1024 * 1024)

        streamed = api.post(f"/api/v1/flows/{unique()}/runs", content=chunks(),
                            headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
