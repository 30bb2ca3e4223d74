"""Errors raised before or around a view still answer the API in JSON with a sentence: a body over Django's
size guard (413), a URL no route matches (404), a request refused before any view (400). Pages keep Django's
HTML answers."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from annotation.models import Hit, Vote
from tests.security.conftest import client_for


def _sentence(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"].endswith(".")
    return body["detail"]


def test_a_hit_submit_over_the_size_guard_answers_413_and_stores_nothing(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    client = client_for(world.users["worker"])
    items = world.hit.items.values_list("id", flat=True)
    answers = [{"item": item, "answer": "present", "ms": 900} for item in items]
    payload = {"idempotency_key": "k" * 12, "answers": answers, "padding": "x" * 30_000}

    response = client.post(f"/api/v1/hits/{world.hit.id}/submit/", json.dumps(payload), "application/json")

    assert response.status_code == 413
    assert "larger than 0.0191 MB" in _sentence(response)
    assert response.json()["code"] == "too_large"
    assert not Vote.objects.filter(hit=world.hit).exists()
    assert Hit.objects.get(id=world.hit.id).status == world.hit.status

    del payload["padding"]  # the same answers, small enough: stored
    response = client.post(f"/api/v1/hits/{world.hit.id}/submit/", json.dumps(payload), "application/json")
    assert response.status_code in (200, 201), response.content
    assert Vote.objects.filter(hit=world.hit).count() == len(answers)


def test_an_anonymous_body_over_the_guard_answers_413_with_the_limit(db):
    body = json.dumps({"wnids": ["n13873502"] * 250_000})  # 3.25 MB, over Django's default 2.5 MB

    response = Client().post("/api/v1/label-sets/check/", body, "application/json")

    assert response.status_code == 413
    assert "larger than 2.5 MB" in _sentence(response)


@pytest.mark.parametrize("path", ["/api/v1/hits/abc/submit/", "/api/v1/no-such-thing/", "/api/v2/synsets/"])
def test_an_api_url_no_route_matches_answers_404_in_json(db, path):
    response = Client().get(path)

    assert response.status_code == 404
    assert _sentence(response) == f"There is no API endpoint at {path}; the endpoints are listed at /api/v1/docs/."


def test_under_debug_an_api_url_no_route_matches_still_answers_json(db, settings):
    """The demo runs with DEBUG on, where Django answers an unmatched URL with its technical page."""
    settings.DEBUG = True

    missing = Client().get("/api/v1/no-such-thing/")
    view_404 = Client().get("/api/v1/synsets/n99999999/")
    page = Client().get("/no-such-page/")

    assert missing.status_code == 404
    assert _sentence(missing).startswith("There is no API endpoint at /api/v1/no-such-thing/")
    assert view_404.status_code == 404
    assert "There is no API endpoint" not in _sentence(view_404)  # the view's own sentence stays
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["post", "patch", "put", "delete"])
def test_an_api_write_without_the_trailing_slash_names_the_url_to_use(db, settings, debug, method):
    # APPEND_SLASH answered a 301 that clients follow as a GET (the write lost), or under DEBUG an HTML 500.
    settings.DEBUG = debug

    response = getattr(Client(), method)("/api/v1/campaigns", "{}", content_type="application/json")

    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"There is no API endpoint at /api/v1/campaigns: the API's URLs end with a slash; "
        f"send the {method.upper()} to /api/v1/campaigns/.",
        "code": "no_trailing_slash",
    }
    assert Client().get("/api/v1/campaigns").status_code == 301  # a GET keeps the redirect: it loses nothing
    assert Client().post("/api/v1/nothing-here", "{}", content_type="application/json").status_code == 404


def test_a_body_that_is_not_json_or_is_null_answers_a_sentence(db):
    broken = Client().post("/api/v1/label-sets/check/", '{"wnids": [', "application/json")
    null = Client().post("/api/v1/label-sets/check/", "null", "application/json")

    assert broken.status_code == 400 and broken.json()["code"] == "parse_error"
    assert _sentence(broken).startswith("The request body is not valid JSON (Expecting value: line 1 column 12")
    assert _sentence(broken).endswith("); send a JSON object.")
    assert (null.status_code, _sentence(null)) == (400, "The request body is empty (null); send a JSON object.")


def test_a_page_url_no_route_matches_keeps_the_html_404(db):
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_request_refused_before_any_view_answers_the_api_in_json(db):
    response = Client(HTTP_HOST="evil.example").get("/api/v1/synsets/?q=circle")

    assert response.status_code == 400
    assert "refused before it reached the API" in _sentence(response)
    page = Client(HTTP_HOST="evil.example").get("/taxonomy/")
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")


def test_a_form_with_more_fields_than_the_guard_answers_400_with_the_limit(db, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    form = "&".join(f"wnids={i}" for i in range(11))

    response = Client().post("/api/v1/label-sets/check/", form, "application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "more than 10 form fields" in _sentence(response)


@pytest.mark.parametrize("anonymous", [True, False])
def test_json_nested_deeper_than_the_parser_can_follow_answers_400_and_stores_nothing(world, anonymous):
    # QA: 5,000 nested lists raised RecursionError in the JSON decoder, a 500, on every JSON endpoint.
    body = '{"answers": ' + "[" * 5000 + "]" * 5000 + ', "idempotency_key": "deep-nesting-1"}'
    if anonymous:
        response = Client().post("/api/v1/label-sets/check/", body, "application/json")
    else:
        client = client_for(world.users["worker"])
        response = client.post(f"/api/v1/hits/{world.hit.id}/submit/", body, "application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert _sentence(response) == "The request body is nested too deeply to read; send a flatter JSON object."
    assert not Vote.objects.exists()
