import hashlib
import hmac
from datetime import datetime

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Hit, HitItem, QuizAttempt, Vote
from annotation.services.campaigns import campaign_set_state
from tests.annotation.hits.conftest import SHAPES, make_gold, qualify
from workers.models import WorkerProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return client

    return make


def test_next_hit_shows_synset_and_items_without_revealing_gold(make_campaign, worker, client_for):
    campaign = make_campaign(candidates=30, gold_rate=0.3)
    make_gold(SHAPES[0], 20)
    qualify(worker, campaign)

    response = client_for(worker).post(f"/api/v1/campaigns/{campaign.id}/hits/next/")

    assert response.status_code == 200
    data = response.json()
    assert data["synset"]["wnid"] == SHAPES[0]
    assert data["synset"]["lemmas"] == ["circle"]
    assert data["synset"]["read_more"].startswith("https://en.wikipedia.org/")
    assert len(data["items"]) == 10
    assert all(set(item) == {"id", "thumbnail", "medium"} for item in data["items"])
    assert all(item["thumbnail"].startswith("/media/thumbs/") for item in data["items"])
    assert HitItem.objects.filter(hit_id=data["id"], is_gold=True).exists()  # gold is there, just not visible


def test_next_hit_lists_items_in_position_order_and_the_best_accepted_examples(make_campaign, worker, client_for):
    from annotation.models import Candidate
    from annotation.selectors import hits as hit_selectors

    hit_selectors._examples_cache.clear()  # another test's synset of the same id may be cached (SQLite reuses ids)
    campaign = make_campaign(candidates=30)
    qualify(worker, campaign)
    accepted = list(Candidate.objects.filter(synset_id=int(SHAPES[0][1:])).order_by("id")[:6])
    for n, candidate in enumerate(accepted):
        Candidate.objects.filter(id=candidate.id).update(state=Candidate.State.ACCEPTED, posterior=0.9 + n / 100)

    data = client_for(worker).post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()

    best = sorted(accepted, key=lambda c: c.id)[2:][::-1]  # the four highest posteriors, highest first
    assert data["examples"] == [f"/media/{c.image.thumbnail.name}" for c in best]
    items = HitItem.objects.filter(hit_id=data["id"]).order_by("position").select_related("candidate__image")
    assert [item["id"] for item in data["items"]] == [item.id for item in items]
    assert [(i["thumbnail"], i["medium"]) for i in data["items"]] == [
        (f"/media/{item.candidate.image.thumbnail.name}", f"/media/{item.candidate.image.medium.name}")
        for item in items
    ]


def test_submit_over_the_api_and_replay(make_campaign, worker, client_for):
    campaign = make_campaign(candidates=10)
    qualify(worker, campaign)
    api = client_for(worker)
    hit = api.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()
    body = {
        "idempotency_key": "api-key-0001",
        "answers": [{"item": item["id"], "answer": "absent", "ms": 700} for item in hit["items"]],
    }

    first = api.post(f"/api/v1/hits/{hit['id']}/submit/", body, format="json")
    replay = api.post(f"/api/v1/hits/{hit['id']}/submit/", body, format="json")
    again = api.post(f"/api/v1/hits/{hit['id']}/submit/", {**body, "idempotency_key": "api-key-0002"}, format="json")

    assert first.status_code == 201
    assert first.json() == {"hit": hit["id"], "answers": 10, "earned": "0.10"}
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert again.status_code == 409
    assert again.json() == {"detail": f"HIT {hit['id']} was already submitted.", "code": "conflict"}
    assert Vote.objects.count() == 10


def test_no_work_left_is_204(make_campaign, worker, client_for):
    campaign = make_campaign(candidates=0)
    qualify(worker, campaign)

    response = client_for(worker).post(f"/api/v1/campaigns/{campaign.id}/hits/next/")

    assert response.status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"answers": []}, 400, "idempotency_key: This field is required."),
        (
            {"idempotency_key": "short", "answers": []},
            400,
            "idempotency_key: Ensure this field has at least 8 characters.",
        ),
        (
            {"idempotency_key": "long-enough", "answers": "yes"},
            400,
            'answers: Expected a list of items but got type "str".',
        ),
        ({"idempotency_key": "long-enough", "answers": []}, 400, "10 items of HIT"),
    ],
)
def test_bad_submissions_get_a_sentence_and_change_nothing(make_campaign, worker, client_for, body, status, detail):
    campaign = make_campaign(candidates=10)
    qualify(worker, campaign)
    api = client_for(worker)
    hit = api.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()

    response = api.post(f"/api/v1/hits/{hit['id']}/submit/", body, format="json")

    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert Vote.objects.count() == 0
    assert Hit.objects.get(id=hit["id"]).status == "open"


def test_anonymous_gets_401_and_foreign_hit_404(make_campaign, worker, other_worker, client_for):
    campaign = make_campaign(candidates=10)
    qualify(worker, campaign)
    hit = client_for(worker).post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()

    anonymous = APIClient().post(f"/api/v1/campaigns/{campaign.id}/hits/next/")
    foreign = client_for(other_worker).post(
        f"/api/v1/hits/{hit['id']}/submit/", {"idempotency_key": "x" * 10, "answers": []}, format="json"
    )
    unqualified = client_for(other_worker).post(f"/api/v1/campaigns/{campaign.id}/hits/next/")

    assert anonymous.status_code == 401
    assert foreign.status_code == 404
    assert unqualified.status_code == 403
    assert unqualified.json()["detail"] == "Pass this campaign's qualification quiz before labelling."


def test_quiz_pass_qualifies_and_failure_waits(make_campaign, worker, other_worker, client_for):
    campaign = make_campaign(candidates=10, quiz_size=4, quiz_pass_mark=0.75, quiz_retry_seconds=600)
    make_gold(SHAPES[0], 2, present=True)
    make_gold(SHAPES[0], 2, present=False)
    good, bad = client_for(worker), client_for(other_worker)
    from annotation.models import GoldItem

    truth = dict(GoldItem.objects.values_list("id", "present"))

    quiz = good.post(f"/api/v1/campaigns/{campaign.id}/quiz/").json()
    documented = good.get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]["Quiz"]
    assert set(quiz) == set(documented["properties"])
    passed = good.post(
        f"/api/v1/quizzes/{quiz['id']}/submit/",
        {"answers": {str(i["id"]): truth[i["id"]] for i in quiz["items"]}},
        format="json",
    )
    other = bad.post(f"/api/v1/campaigns/{campaign.id}/quiz/").json()
    failed = bad.post(
        f"/api/v1/quizzes/{other['id']}/submit/",
        {"answers": {str(i["id"]): not truth[i["id"]] for i in other["items"]}},
        format="json",
    )
    retry = bad.post(f"/api/v1/campaigns/{campaign.id}/quiz/")

    assert len(quiz["items"]) == 4 and quiz["synset"] is None  # one quiz for the whole campaign
    assert all(set(item) == {"id", "synset", "thumbnail", "medium"} for item in quiz["items"])
    assert passed.json() == {"score": 1.0, "passed": True, "retry_in": 0}
    assert good.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").status_code == 200
    assert failed.json() == {"score": 0.0, "passed": False, "retry_in": 600}
    assert retry.status_code == 403
    assert "try the quiz again in" in retry.json()["detail"]


def test_a_quiz_is_scored_once_per_try(make_campaign, worker, client_for):
    # QA: three starts before answering gave three attempts with the same items; after the first failed, the
    # other two were still scored during the retry delay, so a worker could flip one answer per attempt.
    from annotation.models import GoldItem, QuizAttempt

    campaign = make_campaign(candidates=10, quiz_size=4, quiz_pass_mark=1.0, quiz_retry_seconds=600)
    make_gold(SHAPES[0], 4, present=True)
    client = client_for(worker)
    starts = [client.post(f"/api/v1/campaigns/{campaign.id}/quiz/") for _ in range(3)]
    assert {r.status_code for r in starts} == {201}
    assert len({r.json()["id"] for r in starts}) == 1  # the open quiz, not three
    quiz = starts[0].json()
    truth = dict(GoldItem.objects.values_list("id", "present"))
    wrong = {str(i["id"]): truth[i["id"]] for i in quiz["items"]}
    wrong[str(quiz["items"][0]["id"])] = not truth[quiz["items"][0]["id"]]
    failed = client.post(f"/api/v1/quizzes/{quiz['id']}/submit/", {"answers": wrong}, format="json")
    assert failed.json()["passed"] is False
    assert client.post(f"/api/v1/campaigns/{campaign.id}/quiz/").status_code == 403

    # An attempt left open from before (created directly: the API no longer hands out a second one) is not
    # scored while the delay runs, nor once a newer attempt exists.
    stale = QuizAttempt.objects.create(campaign=campaign, worker=worker, items=[int(k) for k in wrong])
    right = {k: truth[int(k)] for k in wrong}
    during = client.post(f"/api/v1/quizzes/{stale.id}/submit/", {"answers": right}, format="json")
    assert during.status_code == 403 and "try the quiz again in" in during.json()["detail"]
    stale.refresh_from_db()
    assert stale.score is None
    newer = QuizAttempt.objects.create(campaign=campaign, worker=worker, items=stale.items)
    replaced = client.post(f"/api/v1/quizzes/{stale.id}/submit/", {"answers": right}, format="json")
    assert replaced.status_code == 409
    assert replaced.json()["detail"] == f"Quiz {stale.id} was replaced by a newer one ({newer.id}); answer that one."


@pytest.mark.parametrize("state", ["draft", "paused"])
def test_no_quiz_and_no_work_page_while_the_campaign_is_not_running(make_campaign, worker, client_for, client, state):
    campaign = make_campaign(candidates=10, running=state != "draft")
    make_gold(SHAPES[0], 4, present=True)
    if state == "paused":
        campaign = campaign_set_state(campaign=campaign, state="paused")

    quiz = client_for(worker).post(f"/api/v1/campaigns/{campaign.id}/quiz/")
    client.force_login(worker)
    pages = [client.get(f"/work/{campaign.id}/"), client.get(f"/work/{campaign.id}/quiz/")]

    assert quiz.status_code == 409
    assert quiz.json()["detail"] == f"Campaign “shapes” is {state}, not running: there is no quiz to take."
    assert QuizAttempt.objects.count() == 0
    assert [page.status_code for page in pages] == [409, 409]
    assert all(f"is {state}, not running" in page.content.decode() for page in pages)


def test_the_work_page_sends_a_worker_who_has_not_passed_the_quiz_to_it(make_campaign, worker, client):
    from workers.models import Qualification

    campaign = make_campaign(candidates=10)
    client.force_login(worker)
    page = f"/work/{campaign.id}/"
    assert client.get(page)["Location"] == f"/work/{campaign.id}/quiz/"  # no qualification yet
    Qualification.objects.create(worker=worker, campaign=campaign)  # a trial one: still the quiz
    assert client.get(page)["Location"] == f"/work/{campaign.id}/quiz/"
    qualify(worker, campaign)
    assert client.get(page).status_code == 200
    # A blocked worker gets the page, whose next-HIT request tells them why (not a quiz they cannot pass).
    Qualification.objects.filter(worker=worker, campaign=campaign).update(status=Qualification.Status.BLOCKED)
    assert client.get(page).status_code == 200


def test_no_work_right_now_says_when_to_look_again_and_no_work_left_does_not(
    make_campaign, worker, other_worker, client_for, settings
):
    settings.NEXT_HIT_RETRY_SECONDS = 7
    campaign = make_campaign(candidates=3, min_votes=1, images_per_hit=3)
    for member in (worker, other_worker):
        qualify(member, campaign)
    url = f"/api/v1/campaigns/{campaign.id}/hits/next/"
    first = client_for(worker).post(url)
    assert first.status_code == 200

    # All three candidates are leased to the first worker: nothing for the other now, but maybe soon.
    waiting = client_for(other_worker).post(url)
    assert waiting.status_code == 204 and waiting["Retry-After"] == "7"

    # The first worker has been shown all three: nothing will ever come for them here.
    hit = Hit.objects.get(id=first.json()["id"])
    answers = [{"item": i.id, "answer": "present", "ms": 900} for i in hit.items.all()]
    submitted = client_for(worker).post(
        f"/api/v1/hits/{hit.id}/submit/", {"idempotency_key": "retry-after-1", "answers": answers}, format="json"
    )
    assert submitted.status_code == 201
    done = client_for(worker).post(url)
    assert done.status_code == 204 and "Retry-After" not in done


def test_profile_reports_the_workers_own_figures(make_campaign, worker, client_for):
    campaign = make_campaign(candidates=10)
    qualify(worker, campaign)
    api = client_for(worker)
    hit = api.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()
    answers = [{"item": item["id"], "answer": "present", "ms": 1500} for item in hit["items"]]
    api.post(f"/api/v1/hits/{hit['id']}/submit/", {"idempotency_key": "profile-key", "answers": answers}, format="json")

    data = api.get("/api/v1/me/").json()

    assert data["hits_done"] == 1
    assert data["answers"] == 10
    assert data["median_seconds_per_image"] == 1.5
    assert data["earnings"] == "0.10" and data["unpaid"] == "0.10"
    page = Client()
    page.force_login(worker)
    assert '<b data-stat="median_seconds">1.5 s</b>' in page.get("/work/").content.decode()
    # Under a second, in milliseconds, as the speed screen's block reason gives it (not "0.1 s" beside "52 ms").
    Vote.objects.filter(worker=worker).update(response_ms=52)
    assert '<b data-stat="median_seconds">52 ms</b>' in page.get("/work/").content.decode()
    assert data["qualifications"] == [
        {"campaign": campaign.id, "campaign_name": "shapes", "status": "qualified", "blocked_reason": ""}
    ]


def test_token_endpoint_and_external_worker_sign_in(settings, worker):
    settings.EXTERNAL_WORKER_SECRET = "marketplace-secret"
    signature = hmac.new(b"marketplace-secret", b"MT-42", hashlib.sha256).hexdigest()
    api = APIClient()

    token = api.post("/api/v1/auth/token/", {"username": "worker", "password": "pw-worker-1"}, format="json")
    first = api.post("/api/v1/workers/external/", {"external_id": "MT-42", "signature": signature}, format="json")
    second = api.post("/api/v1/workers/external/", {"external_id": "MT-42", "signature": signature}, format="json")
    forged = api.post("/api/v1/workers/external/", {"external_id": "MT-43", "signature": signature}, format="json")

    assert token.status_code == 200 and len(token.json()["token"]) == 40
    assert first.status_code == 200
    assert first.json() == second.json()  # one account per external id
    assert WorkerProfile.objects.filter(external_id="MT-42").count() == 1
    assert forged.status_code == 403
    assert WorkerProfile.objects.filter(external_id="MT-43").count() == 0


def test_the_profile_answer_has_exactly_the_fields_its_schema_documents(worker, client_for):
    client = client_for(worker)
    documented = client.get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]["WorkerStats"]
    answered = client.get("/api/v1/me/").json()
    assert set(answered) == set(documented["properties"])
    assert answered["blocked"] is False and answered["blocked_reason"] == ""


def test_a_closing_page_gives_its_hit_back_and_a_reload_takes_it_again(make_campaign, worker, client_for):
    campaign = make_campaign()
    qualify(worker, campaign)
    client = client_for(worker)
    leased = client.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()

    goodbye = client.post(f"/api/v1/hits/{leased['id']}/release/")
    shortened = Hit.objects.get(id=leased["id"]).expires_at
    again = client.post(f"/api/v1/campaigns/{campaign.id}/hits/next/").json()

    assert goodbye.status_code == 204
    assert shortened < Hit.objects.get(id=leased["id"]).expires_at
    assert again["id"] == leased["id"]
    restored = datetime.fromisoformat(again["expires_at"]) - datetime.fromisoformat(leased["expires_at"])
    assert abs(restored.total_seconds()) < 1  # the whole lease again (counted from the HIT's creation)
    assert client.post("/api/v1/hits/999999/release/").json()["detail"] == "You have no HIT 999999."
