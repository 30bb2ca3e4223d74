"""Fuzz the REST API from its own OpenAPI schema (schemathesis): every operation, with data that fits the
schema and data that breaks it, as an anonymous visitor, a crowd worker and a researcher. No answer may be
a 5xx; every 4xx is JSON with a sentence (a path parameter of the wrong type too: no route matches it, and
the API's 404 is JSON as well).

Bounded for CI: FUZZ_EXAMPLES examples per operation, mode and actor (``SYNSIGHT_FUZZ_EXAMPLES`` raises it),
derandomized so a run is reproducible (``SYNSIGHT_FUZZ_SEED`` picks another seed). Half of the cases use
the ids of the seeded world (tests/security/conftest.py) in their paths, so they reach past the 404s.
Each request runs in a savepoint rolled back afterwards: every case starts from the same world."""

from __future__ import annotations

import gzip
import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from tests.security.conftest import CIRCLE

FUZZ_EXAMPLES = int(os.environ.get("SYNSIGHT_FUZZ_EXAMPLES", "4"))
SEED = os.environ.get("SYNSIGHT_FUZZ_SEED")
# The schema and docs pages render the whole schema per call (slow, and they take no input worth fuzzing).
SKIP = {"/api/v1/schema/", "/api/v1/docs/", "/api/v1/redoc/"}


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler as a server runs it, minus the connection closing at the end of each request
    (as Django's test client does), which would end the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(client):
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def real_ids(world) -> dict[str, object]:
    return {
        "campaign_id": world.circles.id, "wnid": CIRCLE, "hit_id": world.hit.id, "attempt_id": world.attempt.id,
        "task_id": world.box_task.id, "batch_id": world.batch.id, "version_id": world.version.id,
        "candidate_id": world.voting.id, "worker_id": world.users["worker"].id, "kind": "draw",
    }  # fmt: skip


def strategies(operation, world):
    """Positive and negative cases; each with random path parameters or the world's."""
    names = {p.name for p in operation.path_parameters}
    known = {k: v for k, v in real_ids(world).items() if k in names}
    out = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        out.append(operation.as_strategy(generation_mode=mode))
        if known:
            out.append(operation.as_strategy(generation_mode=mode, path_parameters=known))
    return out


def describe(case, response) -> str:
    return f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r} -> {response.status_code}"


def json_of(response):
    """The body as JSON; the WSGI transport leaves it gzip-compressed when GZipMiddleware compressed it."""
    content = response.content
    if (response.headers.get("content-encoding") or [""])[0] == "gzip":
        content = gzip.decompress(content)
    return json.loads(content)


def fuzz(operations, world, app, headers: dict, examples: int = FUZZ_EXAMPLES) -> list[str]:
    """Run every operation's strategies; the descriptions of the 5xx answers and of 4xx without a sentence."""
    failures: list[str] = []
    for operation in operations:
        for strategy in strategies(operation, world):

            @settings(
                max_examples=examples, deadline=None, database=None, derandomize=SEED is None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            @given(case=strategy)
            def run(case):
                with transaction.atomic():
                    response = case.call(app=app, headers=headers)
                    transaction.set_rollback(True)
                if response.status_code >= 500:
                    failures.append(describe(case, response))
                elif response.status_code >= 400:
                    # schemathesis gives the headers with lowercase names and a list of values each
                    if not (response.headers.get("content-type") or [""])[0].startswith("application/json"):
                        failures.append(describe(case, response) + " not in JSON")
                        return
                    body = json_of(response)
                    if not (isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"]):
                        failures.append(describe(case, response) + f" without a sentence: {body!r}")

            try:
                (seed(int(SEED))(run) if SEED else run)()
            except Unsatisfiable:  # a negative strategy of an operation with nothing to break (no input)
                continue
    return failures


def token_headers(user) -> dict:
    return {} if user is None else {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


@pytest.mark.parametrize("actor", ["anonymous", "worker", "researcher"])
def test_no_operation_answers_5xx(actor, world, api_schema, wsgi_app):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    operations = [op for op in operations if op.path not in SKIP]

    failures = fuzz(operations, world, wsgi_app, token_headers(world.users.get(actor)))

    assert failures == [], "\n".join(sorted(set(failures))[:40])


def test_the_fuzzer_reports_a_server_error(world, api_schema, wsgi_app, monkeypatch):
    """The harness itself: a view that crashes is reported (so a green run means something)."""

    def crash(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("annotation.selectors.worker_stats", crash)
    me = [r.ok() for r in api_schema.get_all_operations() if r.ok().path == "/api/v1/me/"]

    failures = fuzz(me, world, wsgi_app, token_headers(world.users["worker"]), examples=2)

    assert failures and all(f.startswith("GET /api/v1/me/") and f.endswith("-> 500") for f in failures)
