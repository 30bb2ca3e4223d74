"""The box task REST endpoints: next and submit, with every kind of bad input answered 4xx with a sentence
and nothing stored."""

import json

import pytest
from rest_framework.test import APIClient

from annotation.models import Box, BoxAnswer, BoxJob, BoxTask
from tests.annotation.boxes.conftest import key

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def lease(client, campaign, kind="draw"):
    response = client.post(f"/api/v1/campaigns/{campaign.id}/boxes/{kind}/next/")
    assert response.status_code == 200, response.content
    return response.json()


def test_next_draw_task_shows_images_with_size_and_accepted_boxes(box_campaign, crowd, client_for):
    data = lease(client_for(crowd[0]), box_campaign)
    assert data["kind"] == "draw"
    assert data["synset"]["lemmas"][0] == "circle"
    assert len(data["items"]) == 3
    assert {(i["image"]["width"], i["image"]["height"], len(i["boxes"])) for i in data["items"]} == {(640, 480, 0)}


def test_submitting_a_box_stores_it_in_image_pixels(box_campaign, crowd, client_for):
    client = client_for(crowd[0])
    data = lease(client, box_campaign)
    answers = [{"item": i["id"], "answer": "box", "boxes": [[0, 0, 640, 480]], "ms": 9000} for i in data["items"]]
    answers[1] = {"item": data["items"][1]["id"], "answer": "box", "boxes": [{"x1": 5, "y1": 6, "x2": 7, "y2": 8}]}
    response = client.post(f"/api/v1/box-tasks/{data['id']}/submit/", {"idempotency_key": key(), "answers": answers},
                           format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["answers"] == 3
    assert sorted(Box.objects.values_list("x1", "y1", "x2", "y2")) == [(0, 0, 640, 480), (0, 0, 640, 480), (5, 6, 7, 8)]


BAD = [
    ([-1, 0, 10, 10], "outside the 640×480 image"),
    ([0, 0, 641, 10], "outside the 640×480 image"),
    ([10, 10, 10, 20], "has no area"),
    ([10, 20, 5, 30], "has no area"),
    ([1.5, 0, 10, 10], "whole pixel"),
    (["1", 0, 10, 10], "must be a number"),
    ([True, 0, 10, 10], "must be a number"),
    ([0, 0, 10], "A box is"),
    ({"x1": 0, "y1": 0, "x2": 5}, "exactly the keys"),
]


@pytest.mark.parametrize(("box", "message"), BAD)
def test_a_bad_box_is_refused_with_a_sentence_and_nothing_is_stored(box_campaign, crowd, client_for, box, message):
    client = client_for(crowd[0])
    data = lease(client, box_campaign)
    answers = [{"item": i["id"], "answer": "box", "boxes": [[1, 1, 20, 20]], "ms": 1} for i in data["items"]]
    answers[-1]["boxes"] = [box]
    response = client.post(f"/api/v1/box-tasks/{data['id']}/submit/", {"idempotency_key": key(), "answers": answers},
                           format="json")  # fmt: skip
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert response.json()["code"] == "invalid"
    assert (Box.objects.count(), BoxAnswer.objects.count()) == (0, 0)
    assert BoxTask.objects.get(id=data["id"]).status == "open"
    assert set(BoxJob.objects.values_list("state", "draw_pending")) == {("draw", 1)}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a[0].update(boxes=[[1, 1, 5, 5], [6, 6, 9, 9]]), "Draw exactly one box per image"),
        (lambda a: a[0].update(item=999_999), "is not part of task"),
        (lambda a: a.append(dict(a[0])), "answered twice"),
        (lambda a: a.pop(), "has no answer"),
        (lambda a: a[0].update(answer="no_more"), "carries 1 box"),
        (lambda a: a[0].update(answer="maybe"), "answer must be one of"),
        # Unhashable values: a dictionary lookup raised TypeError, a 500 (QA).
        (lambda a: a[0].update(answer=["box"]), "answer must be one of"),
        (lambda a: a[0].update(answer={"box": 1}), "answer must be one of"),
        (lambda a: a[0].update(ms=-1), "ms must be"),
    ],
)
def test_answers_for_other_images_too_many_boxes_and_gaps_are_refused(box_campaign, crowd, client_for, mutate, message):
    client = client_for(crowd[0])
    data = lease(client, box_campaign)
    answers = [{"item": i["id"], "answer": "box", "boxes": [[1, 1, 20, 20]], "ms": 1} for i in data["items"]]
    mutate(answers)
    response = client.post(f"/api/v1/box-tasks/{data['id']}/submit/", {"idempotency_key": key(), "answers": answers},
                           format="json")  # fmt: skip
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert (Box.objects.count(), BoxAnswer.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"idempotency_key": "abcdefgh", "answers": [{"item": 1, "answer": "box", "boxes": [[NaN, 0, 1, 1]]}]}',
        '{"idempotency_key": "abcdefgh", "answers": [{"item": 1, "answer": "box", "boxes": [[Infinity, 0, 1, 1]]}]}',
        '{"idempotency_key": "abcdefgh", "answers": "all"}',
        "[]",
    ],
)
def test_malformed_json_and_non_finite_numbers_are_400(box_campaign, crowd, client_for, body):
    client = client_for(crowd[0])
    data = lease(client, box_campaign)
    response = client.post(f"/api/v1/box-tasks/{data['id']}/submit/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert (Box.objects.count(), BoxAnswer.objects.count()) == (0, 0)


def test_someone_elses_task_is_404_and_anonymous_is_refused(box_campaign, crowd, client_for):
    data = lease(client_for(crowd[0]), box_campaign)
    body = {"idempotency_key": key(), "answers": []}
    response = client_for(crowd[1]).post(f"/api/v1/box-tasks/{data['id']}/submit/", body, format="json")
    assert response.status_code == 404
    assert APIClient().post(f"/api/v1/campaigns/{box_campaign.id}/boxes/draw/next/").status_code in (401, 403)


def test_unknown_kind_and_campaign_without_boxes(box_campaign, crowd, client_for):
    client = client_for(crowd[0])
    assert client.post(f"/api/v1/campaigns/{box_campaign.id}/boxes/paint/next/").status_code == 404
    box_campaign.boxes_enabled = False
    box_campaign.save()
    response = client.post(f"/api/v1/campaigns/{box_campaign.id}/boxes/draw/next/")
    assert response.status_code == 409
    assert "does not collect boxes" in json.loads(response.content)["detail"]


def test_no_work_is_204(box_campaign, crowd, client_for):
    client = client_for(crowd[0])
    assert client.post(f"/api/v1/campaigns/{box_campaign.id}/boxes/quality/next/").status_code == 204


def test_a_retry_with_the_same_key_but_other_answers_is_refused_and_the_first_answers_stand(
    box_campaign, crowd, client_for
):
    """QA: a box task replayed with its key answered 200 "recorded" whatever the body carried (other boxes,
    other answers, even a malformed one), so a client that reused a key believed its new answers were
    stored. As for HITs (hits.hit_submit), a replay must carry the answers the key first carried."""
    client = client_for(crowd[0])
    data = lease(client, box_campaign)
    url = f"/api/v1/box-tasks/{data['id']}/submit/"
    first = [{"item": i["id"], "answer": "box", "boxes": [[1, 1, 20, 20]], "ms": 5} for i in data["items"]]
    same_key = key()
    assert client.post(url, {"idempotency_key": same_key, "answers": first}, format="json").status_code == 201
    stored = sorted(Box.objects.values_list("x1", "y1", "x2", "y2"))

    retry = [{**a, "ms": 99} for a in first]  # response times are not compared
    assert client.post(url, {"idempotency_key": same_key, "answers": retry}, format="json").status_code == 200
    other_box = [{**a, "boxes": [[2, 2, 30, 30]]} for a in first]
    other_answer = [{"item": a["item"], "answer": "not_present", "ms": 5} for a in first]
    malformed = [{"item": a["item"], "answer": "box", "boxes": None} for a in first]
    for answers in (other_box, other_answer, malformed, first[:1]):
        response = client.post(url, {"idempotency_key": same_key, "answers": answers}, format="json")
        assert response.status_code == 409, response.content
        assert "other answers" in response.json()["detail"]
    assert sorted(Box.objects.values_list("x1", "y1", "x2", "y2")) == stored
    assert BoxAnswer.objects.count() == 3


def test_a_closing_box_page_gives_its_task_back_and_a_reload_takes_it_again(box_campaign, crowd, client_for):
    from datetime import timedelta

    from django.utils import timezone

    client = client_for(crowd[0])
    task = lease(client, box_campaign)
    whole = BoxTask.objects.get(id=task["id"]).expires_at

    assert client.post(f"/api/v1/box-tasks/{task['id']}/release/").status_code == 204
    assert BoxTask.objects.get(id=task["id"]).expires_at <= timezone.now() + timedelta(seconds=60)
    assert lease(client, box_campaign)["id"] == task["id"]  # a reload within the minute: the same task, whole again
    assert abs((BoxTask.objects.get(id=task["id"]).expires_at - whole).total_seconds()) < 1

    client.post(f"/api/v1/box-tasks/{task['id']}/release/")
    BoxTask.objects.filter(id=task["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))  # the minute ran out
    other = lease(client_for(crowd[1]), box_campaign)
    assert {i["id"] for i in other["items"]} != set() and BoxTask.objects.get(id=task["id"]).status == "expired"
    refused = client_for(crowd[1]).post(f"/api/v1/box-tasks/{task['id']}/release/")
    assert (refused.status_code, refused.json()["detail"]) == (404, f"You have no box task {task['id']}.")
