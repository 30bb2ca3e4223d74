"""The crowd loop's round trips, pinned: next-HIT and submit are the hot path (issue 4's load targets), and
a query that creeps in per request costs every worker on every HIT."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.services import rollups
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import answers_for, make_gold, qualify

pytestmark = pytest.mark.django_db

# Counted: every statement Django sends, including the SAVEPOINT and RELEASE that stand for BEGIN and COMMIT
# inside the test's transaction (an empty pair — a transaction that sent nothing — is left out: outside a test it
# sends nothing). next: qualification + open HIT, then on PostgreSQL one statement of CTEs (lease with
# UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED), gold, HIT, items, the page's rows) in a savepoint;
# on SQLite the lease's SELECT and UPDATE, gold, HIT, items. submit (with a broker, rollups deferred): HIT +
# items locked, then on SQLite votes, candidates locked, candidates, synset counter, profile, ledger, HIT — on
# PostgreSQL those seven are one statement of CTEs.
NEXT_QUERIES = {"postgresql": 4, "sqlite": 8}
SUBMIT_QUERIES = {"postgresql": 4, "sqlite": 10}


def test_next_and_submit_round_trips_are_pinned(make_campaign, worker, monkeypatch, django_capture_on_commit_callbacks):
    campaign = make_campaign(candidates=40, min_votes=2, max_votes=3, images_per_hit=10, gold_rate=0.3)
    make_gold("n13873502", 5)
    qualify(worker, campaign)
    monkeypatch.setattr(rollups, "deferred", lambda: True)
    first = hit_next(worker=worker, campaign=campaign)  # also warms the per-process caches
    hit_submit(worker=worker, hit_id=first.id, answers=answers_for(first), idempotency_key="count-key-0")
    hit = hit_next(worker=worker, campaign=campaign)
    answers = answers_for(hit)
    with CaptureQueriesContext(connection) as submitting, django_capture_on_commit_callbacks():
        hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key="count-key-1")
    with CaptureQueriesContext(connection) as leasing:
        hit = hit_next(worker=worker, campaign=campaign)
    assert hit is not None
    leased, submitted = _sent(leasing.captured_queries), _sent(submitting.captured_queries)
    print("next:", *(sql[:100] for sql in leased), sep="\n  ")
    print("submit:", *(sql[:100] for sql in submitted), sep="\n  ")
    assert len(leased) <= NEXT_QUERIES[connection.vendor]
    assert len(submitted) <= SUBMIT_QUERIES[connection.vendor]


def _sent(queries: list[dict]) -> list[str]:
    """The statements, without SAVEPOINT x / RELEASE SAVEPOINT x pairs with nothing between them."""
    sent: list[str] = []
    for sql in (q["sql"] for q in queries):
        if sent and sent[-1].startswith("SAVEPOINT ") and sql == f"RELEASE {sent[-1]}":
            sent.pop()
        else:
            sent.append(sql)
    return sent
