"""A researcher's block and unblock of a worker in their campaign (QA): only a worker who worked there, never
twice, never an unblock of nobody, and an unblock says when another campaign's block still stands."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotation.models import WorkerAction
from annotation.services.campaigns import campaign_create, campaign_set_state
from tests.annotation.hits.conftest import SHAPES, qualify
from workers.models import Qualification, WorkerProfile
from workers.roles import Role
from workers.services import account_create

STILL = "Still blocked in campaign(s) {}: their votes stay uncounted everywhere until that block is lifted."


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(user, campaign, worker, action: str, reason: str = "spam"):
    url = f"/api/v1/campaigns/{campaign.id}/workers/{worker.id}/{action}/"
    return api(user).post(url, {"reason": reason}, format="json")


@pytest.fixture
def elsewhere(seeded, other_researcher):
    """Another researcher's running campaign (squares: a synset of their own), in which ``other_worker`` works too."""
    campaign = campaign_create(owner=other_researcher, name="squares", wnids=[SHAPES[2]], gold_rate=0.0)
    campaign = campaign_set_state(campaign=campaign, state="running")
    qualify(seeded.other_worker, campaign)
    return campaign


def history():
    return list(WorkerAction.objects.order_by("id").values_list("worker", "campaign", "action"))


def test_a_researcher_cannot_block_a_worker_who_never_worked_in_their_campaign(seeded, elsewhere, other_researcher):
    stranger = account_create(username="stranger", password="pw-stranger-1", role=Role.WORKER)
    qualify(stranger, elsewhere)

    response = post(seeded.researcher, seeded.campaign, stranger, "block")

    assert response.status_code == 404
    assert response.json()["detail"] == f"Worker {stranger.id} has done no work in campaign {seeded.campaign.id}."
    assert history() == []
    assert not WorkerProfile.objects.filter(user=stranger, blocked=True).exists()
    assert not Qualification.objects.filter(worker=stranger, campaign=seeded.campaign).exists()
    # The campaign where the stranger works can block them.
    assert post(other_researcher, elsewhere, stranger, "block").status_code == 201


def test_a_worker_who_only_started_the_quiz_has_worked_in_the_campaign(seeded):
    newcomer = account_create(username="newcomer", password="pw-newcomer-1", role=Role.WORKER)
    Qualification.objects.create(worker=newcomer, campaign=seeded.campaign)  # a trial: the quiz started

    assert post(seeded.researcher, seeded.campaign, newcomer, "block").status_code == 201
    assert Qualification.objects.get(worker=newcomer, campaign=seeded.campaign).status == "blocked"


def test_blocking_a_blocked_worker_or_unblocking_an_unblocked_one_is_a_conflict_that_records_nothing(seeded):
    worker, campaign = seeded.other_worker, seeded.campaign
    refused = post(seeded.researcher, campaign, worker, "unblock", "appeal")
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"Worker other_worker is not blocked in campaign {campaign.id}."
    assert history() == []

    assert post(seeded.researcher, campaign, worker, "block", "spam").status_code == 201
    again = post(seeded.researcher, campaign, worker, "block", "spam again")
    assert again.status_code == 409
    assert again.json()["detail"] == f"Worker other_worker is already blocked in campaign {campaign.id}."
    assert Qualification.objects.get(worker=worker, campaign=campaign).blocked_reason == "spam"
    assert WorkerProfile.objects.get(user=worker).blocked_reason == "spam"

    assert post(seeded.researcher, campaign, worker, "unblock", "appeal").status_code == 201
    assert post(seeded.researcher, campaign, worker, "unblock", "appeal").status_code == 409
    assert history() == [(worker.id, campaign.id, "block"), (worker.id, campaign.id, "unblock")]


def test_an_unblock_says_which_campaigns_still_block_the_worker(seeded, elsewhere, other_researcher):
    worker, mine = seeded.other_worker, seeded.campaign
    assert post(other_researcher, elsewhere, worker, "block", "copies").json()["blocked_in"] == [elsewhere.id]
    blocked = post(seeded.researcher, mine, worker, "block", "spam").json()
    assert blocked["blocked_in"] == sorted([mine.id, elsewhere.id]) and blocked["message"] == ""

    response = post(seeded.researcher, mine, worker, "unblock", "appeal upheld")

    assert response.status_code == 201
    assert response.json() == {
        "worker": worker.id,
        "action": "unblock",
        "reason": "appeal upheld",
        "blocked_in": [elsewhere.id],
        "message": STILL.format(elsewhere.id),
    }
    assert Qualification.objects.get(worker=worker, campaign=mine).status == "qualified"
    assert WorkerProfile.objects.get(user=worker).blocked is True  # votes still dropped everywhere
    # The dashboard's button now offers a block here again, and says the worker is blocked elsewhere.
    cost = api(seeded.researcher).get(f"/api/v1/campaigns/{mine.id}/dashboard/cost/").json()
    row = next(w for w in cost["workers"] if w["worker"] == worker.id)
    assert (row["blocked"], row["blocked_here"]) == (True, False)
    # Unblocking again here is refused, and the refusal says where the block is.
    again = post(seeded.researcher, mine, worker, "unblock", "appeal upheld")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"Worker other_worker is not blocked in campaign {mine.id}. {STILL.format(elsewhere.id)}"
    )

    last = post(other_researcher, elsewhere, worker, "unblock", "fine after all").json()
    assert (last["blocked_in"], last["message"]) == ([], "")
    assert WorkerProfile.objects.get(user=worker).blocked is False


def test_the_block_answer_is_in_the_openapi_schema(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/campaigns/{campaign_id}/workers/{worker_id}/unblock/"]["post"]
    ref = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"worker", "action", "reason", "blocked_in", "message"} <= set(fields)


def test_an_admin_blocks_everywhere_once_and_unblocks_only_a_blocked_worker(seeded, admin):
    client = Client()
    client.force_login(admin)
    form = {"worker": seeded.other_worker.id, "reason": "copy-paste bot"}
    refused = client.post("/manage/workers/", {**form, "action": "unblock"}, follow=True).content.decode()
    assert "Worker other_worker is not blocked anywhere." in refused
    client.post("/manage/workers/", {**form, "action": "block"})
    again = client.post("/manage/workers/", {**form, "action": "block"}, follow=True).content.decode()
    assert "Worker other_worker is already blocked in every campaign they worked in." in again
    assert history() == [(seeded.other_worker.id, None, "block")]
