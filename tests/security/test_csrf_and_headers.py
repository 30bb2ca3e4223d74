"""CSRF on every browser form and on every state-changing API call made with a session cookie (the pages'
JavaScript), and the cookie and header settings of production mode. (tests/test_security.py holds
check --deploy, the password hasher and the rate limits.)"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client

from tests.security.permission_table import ACTORS, ROWS
from tests.security.test_permission_table import fill, fingerprint, placeholders

ROOT = Path(__file__).resolve().parents[2]
FORM = re.compile(r"<form\b[^>]*>", re.I)


def csrf_client(user=None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def post_forms(html: str, page: str) -> list[tuple[str, dict[str, str]]]:
    """(action, fields) of each ``method="post"`` form in the page, hidden and named inputs as rendered,
    the CSRF token left out."""
    forms = []
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.I | re.S):
        attrs, inner = match.groups()
        if not re.search(r'method="post"', attrs, re.I):
            continue
        action = re.search(r'action="([^"]*)"', attrs)
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', inner))
        fields.pop("csrfmiddlewaretoken", None)
        forms.append((action.group(1) if action and action.group(1) else page, fields))
    return forms


PAGES = [row for row in ROWS if row.method == "GET" and not row.path.startswith(("/api/", "/media/", "/metrics"))]


@pytest.mark.parametrize("actor", ["anonymous", "worker", "admin"])
def test_every_post_form_on_every_page_is_refused_without_its_csrf_token(actor, world, settings):
    world.media_root = settings.MEDIA_ROOT
    values = placeholders(world)
    user = world.users.get(actor)
    seen = 0
    for row in PAGES:
        page = fill(row.path, values)
        response = csrf_client(user).get(page)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        for action, fields in post_forms(response.content.decode(), page.split("?")[0]):
            before = fingerprint()
            refused = csrf_client(user).post(action, fields)
            assert refused.status_code == 403, (page, action)
            assert fingerprint() == before, (page, action)
            seen += 1
    # sign-in and sign-up for everyone, sign-out once signed in, the admin's approve and block forms
    assert seen >= {"anonymous": 2, "worker": 3, "admin": 5}[actor]


def test_a_form_posted_with_its_token_is_not_refused(world):
    client = csrf_client()
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {"username": "worker", "password": "pw-worker-123",
                                                "csrfmiddlewaretoken": token})  # fmt: skip
    assert response.status_code == 302


API_WRITES = [row for row in ROWS if row.method != "GET" and row.path.startswith("/api/")]


@pytest.mark.parametrize("row", API_WRITES, ids=[f"{r.method} {r.name}" for r in API_WRITES])
def test_api_writes_with_a_session_cookie_need_the_csrf_header(row, world, settings):
    """The pages call the API with the session cookie; without X-CSRFToken every write is refused (403,
    with a sentence) and changes nothing. Token-authenticated clients (no cookie) need no CSRF token."""
    world.media_root = settings.MEDIA_ROOT
    values = {**placeholders(world), "world": world}
    allowed = [a for a, status in zip(ACTORS, row.expect, strict=True) if a != "anonymous" and status < 400]
    actor = allowed[0] if allowed else "worker"  # auth-token: refused for a wrong password anyway
    if row.name == "external-worker":  # no session authentication at all: nothing to forge
        return
    body = row.body(world) if callable(row.body) else fill(row.body, values)
    with transaction.atomic():
        before = fingerprint()
        response = csrf_client(world.users[actor]).generic(
            row.method, fill(row.path, values), json.dumps(body or {}), "application/json"
        )
        assert response.status_code == 403, response.content
        assert response.json()["detail"].startswith("CSRF Failed")
        assert fingerprint() == before
        transaction.set_rollback(True)


PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({k: getattr(s, k, "
    "None) for k in ['DEBUG', 'SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', "
    "'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_SAMESITE', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
    "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_CONTENT_TYPE_NOSNIFF', 'SECURE_REFERRER_POLICY', 'X_FRAME_OPTIONS', "
    "'PASSWORD_HASHERS', 'SECURE_REDIRECT_EXEMPT']}))"
)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), SYNSIGHT_DATA_DIR=str(tmp_path_factory.mktemp("p")))
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE":
                            "config.settings"}, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_mode_settings_are_hardened(production):
    assert production["DEBUG"] is False
    assert production["SESSION_COOKIE_SECURE"] and production["CSRF_COOKIE_SECURE"]
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == production["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000 and production["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert production["SECURE_CONTENT_TYPE_NOSNIFF"] and production["X_FRAME_OPTIONS"] == "DENY"
    assert production["SECURE_REFERRER_POLICY"] == "same-origin"
    assert production["PASSWORD_HASHERS"][0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_production_mode_leaves_the_probe_and_the_scraper_on_plain_http(production, world, settings):
    """A load balancer's probe and a Prometheus scraper talk plain HTTP to the app server: a redirect to HTTPS
    there is a failed probe and a failed scrape (README's `curl … http://127.0.0.1:8000/metrics`). Everything
    else still goes to HTTPS, and /metrics still wants its token."""
    for key in ["SECURE_SSL_REDIRECT", "SECURE_REDIRECT_EXEMPT"]:
        setattr(settings, key, production[key])
    settings.METRICS_TOKEN = "scrape-token-1"
    client = Client()
    assert client.get("/accounts/login/").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/metrics").status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-1"})
    assert scraped.status_code == 200 and b"synsight_" in scraped.content


def test_production_mode_cookies_and_headers_on_the_wire(production, world, settings):
    """The same settings applied here: what a browser receives after signing in over HTTPS, and the
    redirect of plain HTTP."""
    for key in ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
                "SECURE_HSTS_INCLUDE_SUBDOMAINS"]:  # fmt: skip
        setattr(settings, key, production[key])
    client = Client()
    assert client.get("/accounts/login/").status_code == 301  # plain HTTP goes to HTTPS
    page = client.get("/accounts/login/", secure=True)
    token = page.cookies["csrftoken"]
    assert token["secure"] and token["samesite"] == "Lax"
    response = client.post("/accounts/login/", {"username": "worker", "password": "pw-worker-123"}, secure=True)
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert response["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
