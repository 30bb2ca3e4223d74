"""Who may see what: researchers their own campaigns, admins all; workers 403; anonymous 401 on the API and
the sign-in page on pages; another researcher's campaign answers 404."""

import pytest
from django.test import Client

from annotation.models import WorkerAction
from workers.models import Qualification

PANELS = ["summary", "throughput", "progress", "tree", "quality", "cost"]


def api_urls(campaign_id: int, wnid: str) -> list[str]:
    base = f"/api/v1/campaigns/{campaign_id}/"
    return [base, f"{base}synsets/{wnid}/", f"{base}synsets/{wnid}/candidates/", f"{base}synsets/{wnid}/disagreements/",
            *[f"{base}dashboard/{panel}/" for panel in PANELS]]  # fmt: skip


def page_urls(campaign_id: int, wnid: str) -> list[str]:
    return [f"/research/{campaign_id}/", f"/research/{campaign_id}/synsets/{wnid}/"]


def as_user(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def actors(seeded, worker, other_researcher, admin):
    return {"anonymous": None, "worker": worker, "other_researcher": other_researcher,
            "researcher": seeded.researcher, "admin": admin}  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "api_status", "page_status"),
    [("anonymous", 401, 302), ("worker", 403, 403), ("other_researcher", 404, 404), ("researcher", 200, 200),
     ("admin", 200, 200)],
)  # fmt: skip
def test_campaign_api_and_pages_by_actor(actor, api_status, page_status, actors, seeded):
    client = as_user(actors[actor])
    wnid = "n13873502"
    for url in api_urls(seeded.campaign.id, wnid):
        assert client.get(url).status_code == api_status, url
    for url in page_urls(seeded.campaign.id, wnid):
        response = client.get(url)
        assert response.status_code == page_status, url
        if actor == "anonymous":
            assert response["Location"].startswith("/accounts/login/")


def test_campaign_list_shows_only_your_own_unless_admin(actors, seeded):
    assert as_user(actors["other_researcher"]).get("/api/v1/campaigns/").json() == []
    assert len(as_user(actors["researcher"]).get("/api/v1/campaigns/").json()) == 1
    assert len(as_user(actors["admin"]).get("/api/v1/campaigns/").json()) == 1
    assert as_user(actors["worker"]).get("/api/v1/campaigns/").status_code == 403


@pytest.mark.parametrize("actor", ["worker", "other_researcher"])
def test_denied_block_changes_nothing(actor, actors, seeded):
    url = f"/api/v1/campaigns/{seeded.campaign.id}/workers/{seeded.other_worker.id}/block/"
    response = as_user(actors[actor]).post(url, {"reason": "x"}, content_type="application/json")
    assert response.status_code in {403, 404}
    assert Qualification.objects.get(worker=seeded.other_worker, campaign=seeded.campaign).status == "qualified"
    assert not WorkerAction.objects.exists()


def test_denied_state_change_changes_nothing(actors, seeded):
    url = f"/api/v1/campaigns/{seeded.campaign.id}/state/"
    for actor in ["worker", "other_researcher"]:
        as_user(actors[actor]).post(url, {"state": "paused"}, content_type="application/json")
    seeded.campaign.refresh_from_db()
    assert seeded.campaign.state == "running"


@pytest.mark.parametrize(("actor", "status"), [("worker", 403), ("researcher", 403), ("admin", 200)])
def test_worker_management_is_for_admins(actor, status, actors):
    assert as_user(actors[actor]).get("/manage/workers/").status_code == status
    assert as_user(actors[actor]).get("/manage/payouts.csv").status_code == status
