"""A campaign with a quiz per synset: a worker labels only the synsets whose quiz they passed, and takes the
next synset's quiz when those run out. Through the REST API, as a worker would."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import GoldItem, Hit, QuizAttempt
from annotation.services.campaigns import campaign_set_state
from tests.annotation.hits.conftest import SHAPES, make_gold
from workers.models import Qualification

CIRCLE, TRIANGLE = SHAPES[0], SHAPES[1]


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def take_quiz(client: APIClient, campaign, *, right: bool) -> dict:
    started = client.post(f"/api/v1/campaigns/{campaign.id}/quiz/")
    assert started.status_code == 201, started.json()
    quiz = started.json()
    truth = dict(GoldItem.objects.values_list("id", "present"))
    answers = {str(i["id"]): truth[i["id"]] == right for i in quiz["items"]}
    scored = client.post(f"/api/v1/quizzes/{quiz['id']}/submit/", {"answers": answers}, format="json")
    assert scored.status_code == 200
    return quiz | scored.json()


def label_everything(client: APIClient, campaign) -> tuple[set[str], object]:
    """Label until the API stops handing out HITs; returns the synsets labelled and the reply that stopped it."""
    synsets = set()
    for _ in range(20):
        reply = client.post(f"/api/v1/campaigns/{campaign.id}/hits/next/")
        if reply.status_code != 200:
            return synsets, reply
        hit = reply.json()
        synsets.add(hit["synset"]["wnid"])
        answers = [{"item": i["id"], "answer": "present", "ms": 900} for i in hit["items"]]
        submitted = client.post(
            f"/api/v1/hits/{hit['id']}/submit/", {"idempotency_key": f"key-{hit['id']:08d}", "answers": answers},
            format="json",
        )  # fmt: skip
        assert submitted.status_code == 201
    raise AssertionError("the worker was never told to stop")


@pytest.fixture
def campaign(make_campaign):
    campaign = make_campaign(
        wnids=[CIRCLE, TRIANGLE], candidates=10, running=False, quiz_per_synset=True, quiz_size=4,
        quiz_pass_mark=0.75, quiz_retry_seconds=0,
    )  # fmt: skip
    for wnid in (CIRCLE, TRIANGLE):
        make_gold(wnid, 3, present=True)
        make_gold(wnid, 3, present=False)
    return campaign_set_state(campaign=campaign, state="running")


def test_a_worker_labels_only_the_synsets_whose_quiz_they_passed(campaign, worker):
    client = client_of(worker)

    first = take_quiz(client, campaign, right=True)
    quiz_synsets = {item["synset"]["wnid"] for item in first["items"]}
    assert first["passed"] and len(quiz_synsets) == 1  # one synset's gold only
    (passed,) = quiz_synsets
    assert first["synset"]["wnid"] == passed  # the quiz says which synset it opens
    labelled, refusal = label_everything(client, campaign)

    assert labelled == {passed}
    assert refusal.status_code == 403
    assert refusal.json()["detail"] == (
        "The synsets whose quiz you passed have no images left for you: take the quiz of another synset of this "
        "campaign to go on."
    )

    # The other synset's quiz comes next; once passed, its images are handed out too
    second = take_quiz(client, campaign, right=True)
    assert {item["synset"]["wnid"] for item in second["items"]} == {CIRCLE, TRIANGLE} - {passed}
    more, refusal = label_everything(client, campaign)
    assert more == {CIRCLE, TRIANGLE} - {passed}
    assert refusal.status_code == 204  # everything labelled
    assert Hit.objects.filter(worker=worker).values("synset").distinct().count() == 2

    # No synset left to qualify for
    third = client.post(f"/api/v1/campaigns/{campaign.id}/quiz/")
    assert third.status_code == 409
    assert (
        third.json()["detail"] == "You have passed the quiz of every synset of this campaign that still needs images."
    )


def test_failing_the_next_synsets_quiz_keeps_the_first_one(campaign, worker):
    client = client_of(worker)
    passed = take_quiz(client, campaign, right=True)["items"][0]["synset"]["wnid"]
    label_everything(client, campaign)

    failed = take_quiz(client, campaign, right=False)

    assert not failed["passed"]
    assert Qualification.objects.get(worker=worker, campaign=campaign).status == Qualification.Status.QUALIFIED
    assert list(QuizAttempt.objects.filter(worker=worker, passed=True).values_list("synset_id", flat=True)) == [
        int(passed[1:])
    ]
    # Still refused work (the passed synset is done), with the same sentence
    assert client.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").status_code == 403


def test_before_any_quiz_the_worker_is_sent_to_the_quiz(campaign, worker):
    reply = client_of(worker).post(f"/api/v1/campaigns/{campaign.id}/hits/next/")

    assert reply.status_code == 403
    assert reply.json()["detail"] == "Pass this campaign's qualification quiz before labelling."


def test_a_campaign_quiz_still_covers_every_synset(make_campaign, worker):
    campaign = make_campaign(wnids=[CIRCLE, TRIANGLE], candidates=10, running=False, quiz_size=12)
    for wnid in (CIRCLE, TRIANGLE):
        make_gold(wnid, 3, present=True)
        make_gold(wnid, 3, present=False)
    campaign = campaign_set_state(campaign=campaign, state="running")
    client = client_of(worker)

    quiz = take_quiz(client, campaign, right=True)
    labelled, refusal = label_everything(client, campaign)

    assert {item["synset"]["wnid"] for item in quiz["items"]} == {CIRCLE, TRIANGLE}
    assert labelled == {CIRCLE, TRIANGLE} and refusal.status_code == 204
    assert client.post(f"/api/v1/campaigns/{campaign.id}/quiz/").json()["detail"] == (
        "You are already qualified for this campaign."
    )
