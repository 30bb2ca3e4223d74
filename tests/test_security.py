"""Production settings, password hashing and rate limits."""

import os
import secrets
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from config import settings as config_settings
from workers.roles import Role
from workers.services import account_create

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    # (browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never would)
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), SYNSIGHT_DATA_DIR=str(tmp_path))

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2(settings):
    settings.PASSWORD_HASHERS = config_settings.PASSWORD_HASHERS  # as configured (tests/conftest.py: a cheap one)
    user = account_create(username="hashed", password="a-long-pass-phrase-9", role=Role.WORKER)

    assert User.objects.get(id=user.id).password.startswith("argon2$argon2id$")


@pytest.fixture
def one_window():
    """django-ratelimit counts in fixed windows staggered per key; pin the clock so a test's attempts all
    fall into one window instead of occasionally straddling a boundary."""
    with mock.patch("django_ratelimit.core.time.time", return_value=1_800_000_000.0):
        yield


@pytest.mark.django_db
def test_sign_in_is_rate_limited_with_a_sentence(client, one_window):
    attempts = [client.post("/accounts/login/", {"username": "nobody", "password": "wrong"}) for _ in range(11)]

    assert [r.status_code for r in attempts[:10]] == [200] * 10  # the form again, with its error
    assert attempts[10].status_code == 429
    assert b"Too many attempts from your address" in attempts[10].content


@pytest.mark.django_db
def test_sign_up_is_rate_limited(client, one_window):
    attempts = [
        client.post("/accounts/signup/", {"username": f"u{i}", "password1": "x", "password2": "y"}) for i in range(6)
    ]

    assert [r.status_code for r in attempts] == [200] * 5 + [429]
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_token_endpoint_is_throttled():
    api = APIClient()

    answers = [api.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json") for _ in range(21)]

    assert {r.status_code for r in answers[:20]} == {400}
    assert answers[20].status_code == 429
    assert answers[20].json()["code"] == "throttled"
    assert "Request was throttled" in answers[20].json()["detail"]


@pytest.mark.django_db
def test_token_endpoint_throttle_is_not_reset_by_a_forged_forwarded_for():
    # Served directly (NUM_PROXIES 0), X-Forwarded-For is whatever the client wrote: a fresh one per guess
    # gave a password guesser a fresh allowance each time.
    api = APIClient()

    answers = [
        api.post("/api/v1/auth/token/", {"username": "x", "password": f"guess-{i}"}, format="json",
                 HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        for i in range(21)
    ]  # fmt: skip

    assert {r.status_code for r in answers[:20]} == {400}
    assert answers[20].status_code == 429


@pytest.mark.django_db
def test_behind_a_proxy_sign_in_is_limited_per_client_not_for_everyone(client, settings, one_window):
    # Every request comes from the proxy's address (REMOTE_ADDR); the client's is the entry the proxy appended.
    settings.NUM_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    def sign_in(forwarded_for: str):
        return client.post("/accounts/login/", {"username": "nobody", "password": "wrong"},
                           HTTP_X_FORWARDED_FOR=forwarded_for, **proxy)  # fmt: skip

    guesser = [sign_in(f"192.0.2.{i}, 203.0.113.5") for i in range(11)]  # forged left entries do not count
    other = sign_in("198.51.100.7")

    assert [r.status_code for r in guesser] == [200] * 10 + [429]
    assert other.status_code == 200  # another person behind the same proxy signs in


@pytest.mark.django_db
def test_behind_a_proxy_the_api_throttles_each_client_by_the_address_the_proxy_saw(settings):
    settings.NUM_PROXIES = 1
    api = APIClient(REMOTE_ADDR="10.0.0.2")

    def token(forwarded_for: str):
        return api.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json",
                        HTTP_X_FORWARDED_FOR=forwarded_for)  # fmt: skip

    guesser = [token(f"192.0.2.{i}, 203.0.113.5") for i in range(21)]

    assert guesser[19].status_code == 400 and guesser[20].status_code == 429
    assert token("198.51.100.7").status_code == 400  # not throttled: a wrong password, answered


@pytest.mark.django_db
def test_sign_in_over_a_unix_socket_is_answered_and_still_limited(client, one_window):
    # gunicorn bound to a Unix socket behind nginx gives no REMOTE_ADDR: django-ratelimit raised
    # ImproperlyConfigured, a 500 for every sign-in.
    attempts = [
        client.post("/accounts/login/", {"username": "nobody", "password": "wrong"}, REMOTE_ADDR="") for _ in range(11)
    ]

    assert [r.status_code for r in attempts] == [200] * 10 + [429]


@pytest.mark.django_db
def test_submit_is_throttled_per_worker_with_a_sentence(monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "submit": "3/min"})
    worker = account_create(username="fast-worker", password="a-long-pass-phrase-9", role=Role.WORKER)
    other = account_create(username="other-worker", password="a-long-pass-phrase-9", role=Role.WORKER)
    api = APIClient()
    api.force_authenticate(worker)
    body = {"idempotency_key": "throttle-key-1", "answers": []}

    answers = [api.post("/api/v1/hits/999999/submit/", body, format="json") for _ in range(4)]

    assert [r.status_code for r in answers] == [404, 404, 404, 429]  # no such HIT, then throttled
    assert answers[3].json()["code"] == "throttled"
    api.force_authenticate(other)  # counted per worker: another worker is not held back
    assert api.post("/api/v1/hits/999999/submit/", body, format="json").status_code == 404


@pytest.mark.django_db
def test_throttle_window_ends_and_says_when(monkeypatch):
    """config/throttling.py: a refused request is told how long to wait (Retry-After), and once the window
    has passed the worker is served again."""
    import time

    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "submit": "2/s"})
    worker = account_create(username="burst-worker", password="a-long-pass-phrase-9", role=Role.WORKER)
    api = APIClient()
    api.force_authenticate(worker)
    body = {"idempotency_key": "throttle-key-2", "answers": []}

    answers = [api.post("/api/v1/hits/999999/submit/", body, format="json") for _ in range(3)]
    assert [r.status_code for r in answers] == [404, 404, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    time.sleep(2.1)  # past the one-second window (and Redis's whole-second TTL)
    assert api.post("/api/v1/hits/999999/submit/", body, format="json").status_code == 404
