"""The crowd loop's round trips, pinned: next-HIT and submit are the hot path (issue 4's load targets), and
a query that creeps in per request costs every worker on every HIT."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.services import consensus_queue, rollups
from annotation.services.hits import hit_next, hit_submit
from tests.annotation.hits.conftest import answers_for, make_gold, qualify

pytestmark = pytest.mark.django_db

# Counted: every statement Django sends, including the SAVEPOINT and RELEASE that stand for BEGIN and COMMIT
# inside the test's transaction. next: qualification + open HIT, the lease (PostgreSQL: one UPDATE … WHERE id
# IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id; SQLite: SELECT, then UPDATE), gold, HIT, items. submit
# (with a broker, rollups deferred): HIT + items locked, then on SQLite votes, candidates locked, candidates,
# synset counter, profile, ledger, HIT — on PostgreSQL those seven are one statement of CTEs. With two HITs
# or more of the worker awaiting the consensus drain, next screens the worker first (screening.LAGGING_OWN_HITS).
NEXT_QUERIES = {"postgresql": 7, "sqlite": 8}
SUBMIT_QUERIES = {"postgresql": 4, "sqlite": 10}


def test_next_and_submit_round_trips_are_pinned(make_campaign, worker, monkeypatch, django_capture_on_commit_callbacks):
    campaign = make_campaign(candidates=40, min_votes=2, max_votes=3, images_per_hit=10, gold_rate=0.3)
    make_gold("n13873502", 5)
    qualify(worker, campaign)
    monkeypatch.setattr(rollups, "deferred", lambda: True)
    first = hit_next(worker=worker, campaign=campaign)  # also warms the per-process caches
    hit_submit(worker=worker, hit_id=first.id, answers=answers_for(first), idempotency_key="count-key-0")
    consensus_queue.hits_drain()  # weighed, as a drain does between HITs: only the HIT just submitted awaits one
    hit = hit_next(worker=worker, campaign=campaign)
    answers = answers_for(hit)
    with CaptureQueriesContext(connection) as submitting, django_capture_on_commit_callbacks():
        hit_submit(worker=worker, hit_id=hit.id, answers=answers, idempotency_key="count-key-1")
    with CaptureQueriesContext(connection) as leasing:
        hit = hit_next(worker=worker, campaign=campaign)
    assert hit is not None
    print("next:", *(q["sql"][:100] for q in leasing.captured_queries), sep="\n  ")
    print("submit:", *(q["sql"][:100] for q in submitting.captured_queries), sep="\n  ")
    assert len(leasing.captured_queries) <= NEXT_QUERIES[connection.vendor]
    assert len(submitting.captured_queries) <= SUBMIT_QUERIES[connection.vendor]
