"""The permission table (permission_table.py, written out as docs/permissions.md) requested cell by cell,
plus what a crowd worker must never see in the answers they do get."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from annotation.models import Campaign, Candidate
from tests.security.conftest import CIRCLE, client_for
from tests.security.permission_table import ACTORS, ADMIN_PREFIX, ROWS, Row, markdown
from workers.models import Qualification

ROOT = Path(__file__).resolve().parents[2]
# Keys that would give away a gold answer or a consensus result to a worker.
SECRET_KEYS = {"gold", "is_gold", "present", "truth", "answer", "votes", "yes", "no", "state", "posterior",
               "confidence", "accepted", "rejected", "earned_by", "worker", "workers"}  # fmt: skip


def url_patterns(patterns=None, prefix: str = ""):
    """(route, name) of every URL the resolver knows."""
    for route, pattern in _walk(patterns, prefix):
        yield route, pattern.name


def _walk(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def served_methods(pattern: URLPattern) -> set[str]:
    """The HTTP methods a class-based view implements (GET also answers HEAD); empty for a function view,
    whose methods the table lists by hand."""
    view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    if view_class is None:
        return set()
    allowed = getattr(view_class, "http_method_names", [])
    return {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m) and m in allowed}


def placeholders(world) -> dict[str, object]:
    media = "thumbs/00/11/" + "0a" * 32 + ".jpg"
    path = Path(world.media_root) / media
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 a stored thumbnail")
    return {
        "campaign": world.circles.id, "wnid": CIRCLE, "hit": world.hit.id, "quiz": world.attempt.id,
        "box_task": world.box_task.id, "batch": world.batch.id, "version": world.version.id,
        "candidate": world.voting.id, "accepted": world.accepted.id, "worker_id": world.users["worker"].id,
        "media": media,
    }  # fmt: skip


def fill(value, values: dict):
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def fingerprint() -> dict:
    """Row counts of every model of ours, and the states a denied request could flip."""
    counts = {
        model._meta.label: model.objects.count()
        for label in ("annotation", "workers", "export", "taxonomy", "auth", "authtoken")
        for model in apps.get_app_config(label).get_models()
        if not model._meta.label.startswith("taxonomy.")  # 82k synsets: unchanged by any request here
    }
    return {
        **counts,
        "campaign states": sorted(Campaign.objects.values_list("id", "state")),
        "candidate states": sorted(Candidate.objects.values_list("id", "state", "posterior")),
        "qualifications": sorted(Qualification.objects.values_list("id", "status")),
    }


def request(client, row: Row, values: dict):
    path = fill(row.path, values)
    body = row.body(values["world"]) if callable(row.body) else fill(row.body, values)
    if row.method == "GET":
        return client.get(path)
    if row.fmt == "form":
        return client.generic(row.method, path, urlencode(body or {}), "application/x-www-form-urlencoded")
    return client.generic(row.method, path, json.dumps(body or {}), "application/json")


def test_every_url_has_a_row_and_every_row_resolves_to_its_url():
    patterns = [(route, p) for route, p in _walk() if not route.startswith(ADMIN_PREFIX)]
    names = {p.name for _, p in patterns}
    assert None not in names, "every URL needs a name to be listed in the permission table"
    assert names == {row.name for row in ROWS}
    rows = {(row.name, row.method) for row in ROWS}
    for _, pattern in patterns:
        for method in served_methods(pattern):
            assert (pattern.name, method) in rows, f"no row for {method} {pattern.name}"
        if served_methods(pattern):
            assert {m for n, m in rows if n == pattern.name} <= served_methods(pattern), pattern.name
    for row in ROWS:
        path = row.path.split("?")[0].format(
            campaign=1, wnid=CIRCLE, hit=1, quiz=1, box_task=1, batch=1, version=1, candidate=1, accepted=1,
            worker_id=1, media="thumbs/00/11/" + "0" * 64 + ".jpg",
        )  # fmt: skip
        assert resolve(path).url_name == row.name, row


def test_the_markdown_table_in_docs_is_up_to_date():
    assert (ROOT / "docs" / "permissions.md").read_text() == markdown(), (
        "run: python -m tests.security.permission_table > docs/permissions.md"
    )


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.method} {r.name}" for r in ROWS])
def test_permission_table_row(row, world, settings):
    """Each actor in turn, each in a savepoint rolled back afterwards, so every cell starts from the same
    world. A denial (4xx, or a page's redirect to sign-in) must leave the database exactly as it was."""
    world.media_root = settings.MEDIA_ROOT
    values = {**placeholders(world), "world": world}
    got, changed = [], []
    for i, actor in enumerate(ACTORS):
        with transaction.atomic():
            before = fingerprint()
            client = client_for(world.users.get(actor), REMOTE_ADDR=f"127.0.0.{i + 2}")  # own rate-limit counter
            response = request(client, row, values)
            got.append(response.status_code)
            denied = response.status_code >= 400 or (actor == "anonymous" and response.status_code == 302)
            if denied and fingerprint() != before:
                changed.append(actor)
            if actor == "anonymous" and response.status_code == 302 and row.name != "logout":
                assert response["Location"].startswith("/accounts/login/"), response["Location"]
            if response.status_code >= 400 and row.path.startswith("/api/"):
                assert response.json()["detail"], "every API error carries a sentence"
            transaction.set_rollback(True)
    assert dict(zip(ACTORS, got, strict=True)) == dict(zip(ACTORS, row.expect, strict=True))
    assert changed == [], f"denied requests changed the database for {changed}"


def admin_paths() -> list[str]:
    """Every admin-site URL with its placeholders filled (object ids 1, the first app for the app index)."""
    paths = []
    for route, _ in url_patterns():
        if route.startswith(ADMIN_PREFIX):
            route = re.sub(r"\(\?P<app_label>(\w+)[^)]*\)", r"\1", route).replace("^", "").replace("$", "")
            route = route.replace("(?P<url>.*)", "nowhere/")  # the admin's catch-all
            paths.append("/" + re.sub(r"<[^>]+>", "1", route))
    return paths


# Django's own: the sign-in page, sign-out (POST) and the content-type shortcut (a 404 unless the model
# has get_absolute_url, which none of ours has).
ADMIN_OPEN = {"/admin/login/", "/admin/logout/", "/admin/r/1/1/"}


@pytest.mark.parametrize("actor", ["anonymous", "worker", "researcher"])
def test_every_admin_site_url_sends_non_staff_to_the_admin_sign_in(actor, world):
    client = client_for(world.users.get(actor))
    paths = admin_paths()
    assert len(paths) > 50 and all("<" not in p and "(" not in p for p in paths), paths
    for path in paths:
        if path in ADMIN_OPEN:
            continue
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/"), path


def test_admin_reaches_the_admin_site(world):
    assert client_for(world.users["admin"]).get("/admin/").status_code == 200


# ---- what a worker sees in the answers they do get ----------------------------------------------------------


def keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_a_hit_a_quiz_and_a_box_task_carry_no_gold_answer_nor_consensus(world):
    client = client_for(world.users["worker"])
    hit = client.post(f"/api/v1/campaigns/{world.circles.id}/hits/next/").json()
    box_task = client.post(f"/api/v1/campaigns/{world.circles.id}/boxes/draw/next/").json()
    quiz = client_for(world.users["other_worker"]).post(f"/api/v1/campaigns/{world.circles.id}/quiz/").json()

    assert hit["id"] == world.hit.id and box_task["id"] == world.box_task.id and len(quiz["items"]) == 2
    for payload in (hit, box_task, quiz):
        assert keys_of(payload) & SECRET_KEYS == set(), payload
        text = json.dumps(payload)
        for gold in world.gold:  # quiz items are gold by definition, but never with their answer
            assert f'"present": {str(gold.present).lower()}' not in text


def test_gold_items_in_a_hit_look_like_any_other_item(world):
    """A HIT with gold mixed in: the items' keys and URL shapes are the same for gold and real candidates."""
    from annotation.services import hits
    from tests.annotation.hits.conftest import qualify

    # Gold is drawn per item: with 0.5 on a small HIT no item was gold now and then (a CI failure); 24 draws, ~6e-8.
    Campaign.objects.filter(id=world.circles.id).update(gold_rate=0.5, images_per_hit=24)
    from annotation.services.campaigns import gold_item_create
    from tests.annotation.hits.conftest import make_candidates

    for candidate in make_candidates(CIRCLE, 4):
        gold_item_create(candidate=candidate, present=True)
    other = world.users["other_worker"]
    qualify(other, world.circles)
    hit = hits.hit_next(worker=other, campaign=Campaign.objects.get(id=world.circles.id))
    assert hit.items.filter(is_gold=True).exists() and hit.items.filter(is_gold=False).exists()

    payload = client_for(other).post(f"/api/v1/campaigns/{world.circles.id}/hits/next/").json()
    shapes = {tuple(sorted(item)) for item in payload["items"]}
    assert shapes == {("id", "medium", "thumbnail")}
    ids = [item["id"] for item in payload["items"]]
    assert sorted(ids) == sorted(hit.items.values_list("id", flat=True))


def test_profile_is_always_the_callers_own(world):
    mine = client_for(world.users["worker"]).get("/api/v1/me/").json()
    theirs = client_for(world.users["other_worker"]).get("/api/v1/me/").json()
    assert (mine["username"], mine["earnings"]) == ("worker", "0.05")
    assert (theirs["username"], theirs["earnings"]) == ("other_worker", "0.00")


def test_another_workers_hit_cannot_be_answered_or_read(world):
    body = {"idempotency_key": "stolen-hit-1",
            "answers": [{"item": i.id, "answer": "absent", "ms": 900} for i in world.hit.items.all()]}  # fmt: skip
    before = fingerprint()
    response = client_for(world.users["other_worker"]).post(
        f"/api/v1/hits/{world.hit.id}/submit/", body, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert fingerprint() == before


@pytest.mark.parametrize("actor", ["worker", "other_worker"])
def test_workers_reach_no_candidate_state_or_researcher_data(actor, world):
    client = client_for(world.users[actor])
    c = world.circles.id
    for url in [f"/api/v1/synsets/{CIRCLE}/candidates/?state=voting",
                f"/api/v1/campaigns/{c}/synsets/{CIRCLE}/candidates/?state=voting",
                f"/api/v1/campaigns/{c}/synsets/{CIRCLE}/disagreements/", f"/api/v1/campaigns/{c}/dashboard/quality/",
                f"/api/v1/campaigns/{c}/dashboard/cost/", "/api/v1/datasets/", f"/research/{c}/",
                "/manage/payouts.csv"]:  # fmt: skip
        assert client.get(url).status_code == 403, url


def test_another_researchers_campaigns_stay_out_of_lists(world):
    def names(actor):
        return sorted(c["name"] for c in client_for(world.users[actor]).get("/api/v1/campaigns/").json())

    assert names("researcher") == ["circles"]
    assert names("other_researcher") == ["triangles"]
    assert names("admin") == ["circles", "triangles"]
    other = client_for(world.users["other_researcher"])
    assert other.get("/api/v1/datasets/").json() == []
    assert b"circles" not in other.get("/research/").content
