"""Outages of the database and of Redis, for real: a gunicorn app server whose database port is closed, a
submit whose database connection is terminated half-way (pg_terminate_backend, this test's database only),
and Redis servers of our own stopped under the app. Each answers 503 with a sentence, leaves nothing
half-written, and the same request succeeds once the service is back; a submit that commits while only the
broker is down succeeds, and its consensus update happens later (the periodic sweep)."""

import json
import threading
import time
import uuid

import httpx
import pytest
from django.db import connection, transaction
from django.test import Client

from annotation.models import Candidate, Hit, HitItem, Vote
from annotation.services.consensus import candidates_recompute
from config.api_errors import server_error
from tests.reliability.conftest import app_env, closed_port, crowd_tokens, requires_postgresql, shapes_campaign
from workers.models import LedgerEntry
from workers.roles import Role
from workers.services import account_create

SENTENCE_WORDS = ("unavailable", "try again")


def _assert_503(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == code
    assert all(word in body["detail"] for word in SENTENCE_WORDS)


def _lease(server, token: str, campaign) -> dict:
    response = httpx.post(f"{server.url}/api/v1/campaigns/{campaign.id}/hits/next/", headers=_auth(token), timeout=30)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def _submit(server, token: str, hit: dict, key: str, timeout: float = 30) -> httpx.Response:
    answers = [{"item": item["id"], "answer": "present", "ms": 900} for item in hit["items"]]
    return httpx.post(
        f"{server.url}/api/v1/hits/{hit['id']}/submit/",
        json={"idempotency_key": key, "answers": answers},
        headers=_auth(token),
        timeout=timeout,
    )


def _snapshot(hit_id: int) -> dict:
    """Everything a submit writes, for the HIT and its candidates."""
    candidate_ids = list(HitItem.objects.filter(hit_id=hit_id).values_list("candidate_id", flat=True))
    return {
        "hit": Hit.objects.filter(id=hit_id).values("status", "idempotency_key", "submitted_at").get(),
        "votes": Vote.objects.filter(hit_id=hit_id).count(),
        "ledger": LedgerEntry.objects.filter(hit_id=hit_id).count(),
        "candidates": list(
            Candidate.objects.filter(id__in=candidate_ids)
            .order_by("id")
            .values("votes_count", "yes_count", "pending_count", "priority", "state")
        ),
    }


def test_api_and_pages_answer_503_with_a_sentence_while_the_database_is_unreachable(tmp_path, app_servers):
    # Given an app server whose database is a closed port (no Redis: Celery eager, local cache)
    port = closed_port()
    env = app_env(tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/synsight", CELERY_BROKER_URL=None)
    server = app_servers(env)

    # When the API is called with a token (the token is looked up in the database), and a page is opened
    me = httpx.get(f"{server.url}/api/v1/me/", headers=_auth("0" * 40), timeout=30)
    submit = httpx.post(
        f"{server.url}/api/v1/hits/1/submit/", json={"idempotency_key": "k" * 10, "answers": []},
        headers=_auth("0" * 40), timeout=30,
    )  # fmt: skip
    page = httpx.get(f"{server.url}/taxonomy/?q=dog", headers={"Accept": "text/html"}, timeout=30)

    # Then the API answers 503 JSON with a sentence and a code, and the page a readable 503 page
    _assert_503(me, "database_unavailable")
    _assert_503(submit, "database_unavailable")
    assert page.status_code == 503
    assert page.headers["Content-Type"].startswith("text/html")
    assert "The database is unavailable right now" in page.text and "Traceback" not in page.text


@requires_postgresql
def test_a_submit_whose_database_connection_drops_midway_answers_503_writes_nothing_and_succeeds_on_retry(
    transactional_db, tmp_path, app_servers
):
    # Given a worker holding a HIT on an app server (no Redis: consensus runs in the server process)
    campaign = shapes_campaign(per_synset=4, images_per_hit=2, min_votes=2, max_votes=3)
    (token,) = crowd_tokens(campaign, 1)
    server = app_servers(app_env(tmp_path, CELERY_BROKER_URL=None), workers=1, threads=4)
    hit = _lease(server, token, campaign)
    before = _snapshot(hit["id"])
    key = uuid.uuid4().hex
    candidate_id = HitItem.objects.filter(hit_id=hit["id"]).values_list("candidate_id", flat=True).first()
    answered: dict = {}

    # When the submit has written its votes and waits for a candidate row this test holds locked, and its
    # database connection is then terminated
    with transaction.atomic():
        list(Candidate.objects.select_for_update().filter(id=candidate_id))
        thread = threading.Thread(target=lambda: answered.update(r=_submit(server, token, hit, key)))
        thread.start()
        waiting = _wait_for_lock_waiter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [waiting])
        thread.join(timeout=60)

    # Then it answered 503 with a sentence and nothing of it is stored
    _assert_503(answered["r"], "database_unavailable")
    assert _snapshot(hit["id"]) == before
    # And the same submit, retried with the same key, is stored exactly once
    assert _submit(server, token, hit, key).status_code == 201
    assert _submit(server, token, hit, key).status_code == 200
    assert Vote.objects.filter(hit_id=hit["id"]).count() == len(hit["items"])
    assert LedgerEntry.objects.filter(hit_id=hit["id"]).count() == 1


def _wait_for_lock_waiter() -> int:
    """The pid of the app server's backend that waits on our row lock (this test database only)."""
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is a snapshot
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND wait_event_type = 'Lock'"
            )
            rows = cursor.fetchall()
            if rows:
                assert len(rows) == 1
                return rows[0][0]
            time.sleep(0.05)
    pytest.fail("the submit never waited on the locked candidate")


@requires_postgresql
def test_a_submit_while_redis_is_down_answers_503_writes_nothing_and_succeeds_once_redis_is_back(
    transactional_db, tmp_path, app_servers, redis_servers
):
    # Given an app server whose cache and broker are our own Redis, and a worker holding a HIT
    campaign = shapes_campaign(per_synset=4, images_per_hit=2, min_votes=2, max_votes=3)
    (token,) = crowd_tokens(campaign, 1)
    redis = redis_servers()
    server = app_servers(app_env(tmp_path, REDIS_URL=redis.url(), CELERY_TASK_ALWAYS_EAGER="false"))
    hit = _lease(server, token, campaign)
    before = _snapshot(hit["id"])
    key = uuid.uuid4().hex

    # When Redis is down at submit time
    redis.stop()
    response = _submit(server, token, hit, key)

    # Then 503 with a sentence (the submit rate limit lives in the cache), and nothing is stored
    _assert_503(response, "cache_unavailable")
    assert _snapshot(hit["id"]) == before
    # And once Redis is back the same submit is stored, once
    redis.start()
    assert _submit(server, token, hit, key).status_code == 201
    assert _submit(server, token, hit, key).status_code == 200
    assert Vote.objects.filter(hit_id=hit["id"]).count() == len(hit["items"])


@requires_postgresql
def test_a_submit_committed_while_the_broker_is_down_succeeds_and_the_sweep_updates_consensus_later(
    transactional_db, tmp_path, app_servers, redis_servers, celery_workers
):
    # Given an app server with its cache on one Redis and its Celery broker on another
    campaign = shapes_campaign(per_synset=4, images_per_hit=2, min_votes=2, max_votes=3)
    (token,) = crowd_tokens(campaign, 1)
    cache_redis, broker_redis = redis_servers(), redis_servers()
    env = app_env(
        tmp_path, REDIS_URL=cache_redis.url(), CELERY_BROKER_URL=broker_redis.url(), CELERY_TASK_ALWAYS_EAGER="false",
        CONSENSUS_SWEEP_SECONDS="1",
    )  # fmt: skip
    server = app_servers(env)
    hit = _lease(server, token, campaign)
    candidate_ids = list(HitItem.objects.filter(hit_id=hit["id"]).values_list("candidate_id", flat=True))

    # When the broker is down as the submit commits and queues its consensus update
    broker_redis.stop()
    response = _submit(server, token, hit, uuid.uuid4().hex)

    # Then the submit succeeds: its votes are stored and its candidates await consensus
    assert response.status_code == 201, response.text[:500]
    assert Vote.objects.filter(hit_id=hit["id"]).count() == len(hit["items"])
    awaiting = Candidate.objects.filter(id__in=candidate_ids)
    assert [(c.votes_count, c.priority < 0, c.model_version) for c in awaiting] == [(1, True, "")] * len(candidate_ids)

    # And when the broker is back (empty: the update was never queued), the periodic sweep weighs the votes
    broker_redis.start()
    worker = celery_workers(env, "sweeper", beat=True)
    deadline = time.monotonic() + 60
    while Candidate.objects.filter(id__in=candidate_ids, priority__lt=0).exists():
        assert time.monotonic() < deadline, worker.log_text()[-3000:]
        time.sleep(0.3)
    expected = candidates_recompute(candidate_ids=candidate_ids)
    stored = {c.id: c for c in Candidate.objects.filter(id__in=candidate_ids)}
    assert {i: (e.state, e.posterior) for i, e in expected.items()} == {
        i: (c.state, c.posterior) for i, c in stored.items()
    }
    assert all(c.model_version for c in stored.values())
    swept = f"consensus_sweep recomputed {len(candidate_ids)} candidates"
    while swept not in worker.log_text():  # the task logs after its transaction commits
        assert time.monotonic() < deadline, worker.log_text()[-3000:]
        time.sleep(0.1)


@pytest.mark.django_db
def test_an_outage_after_the_view_answers_503_with_a_sentence_not_500(settings):
    # Given a database that fails when the session is saved, after the sign-in view has answered
    account_create(username="late", password="pw-late-12345", role=Role.WORKER)
    settings.SESSION_ENGINE = "tests.reliability.sessions_down"
    client = Client(raise_request_exception=False)

    # When a worker signs in (the page) and the API is called with a session (JSON)
    page = client.post("/accounts/login/", {"username": "late", "password": "pw-late-12345"})
    credentials = {"username": "late", "password": "pw-late-12345"}
    api = client.post("/accounts/login/", credentials, HTTP_ACCEPT="application/json")

    # Then both answer 503 with the outage's sentence instead of a bare 500
    assert page.status_code == 503
    assert "The database is unavailable right now" in page.content.decode()
    assert page["Retry-After"]
    assert api.status_code == 503
    assert api.json()["code"] == "database_unavailable"


def test_any_other_error_outside_a_view_is_a_500_with_a_sentence_for_the_api(rf):
    request = rf.get("/api/v1/me/", HTTP_ACCEPT="application/json")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)
    assert response.status_code == 500
    assert json.loads(response.content)["detail"].startswith("Something went wrong on our side")


@requires_postgresql
def test_the_health_check_names_what_the_app_server_cannot_reach(
    transactional_db, tmp_path, app_servers, redis_servers
):
    # Given a production-like app server (DEBUG off, HTTPS redirect on) on our own Redis, and one whose
    # database is a closed port
    redis = redis_servers()
    production = {"DEBUG": "false", "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "127.0.0.1"}
    server = app_servers(app_env(tmp_path, REDIS_URL=redis.url(), CELERY_TASK_ALWAYS_EAGER="false", **production))
    no_database = app_servers(
        app_env(tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/synsight", **production)
    )

    # Then a probe over plain HTTP (exempt from the redirect every other path gets) reads 200 while both answer
    healthy = httpx.get(f"{server.url}/healthz", timeout=30)
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok", "database": "ok", "cache": "ok"})
    assert "no-cache" in healthy.headers["Cache-Control"]
    assert httpx.get(f"{server.url}/api/v1/me/", timeout=30).status_code == 301
    # And 503 naming the part that is down, with a sentence; 200 again once it is back
    redis.stop()
    down = httpx.get(f"{server.url}/healthz", timeout=30)
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "database": "ok", "cache": "unavailable",
                           "detail": "This server cannot reach its cache."}  # fmt: skip
    redis.start()
    assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
    lost = httpx.get(f"{no_database.url}/healthz", timeout=30)
    assert lost.status_code == 503 and lost.json()["database"] == "unavailable"
