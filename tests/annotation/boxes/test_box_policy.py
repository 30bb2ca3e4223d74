"""A researcher turns the box pipeline on and off through the campaign's policy (API and dashboard summary)."""

from rest_framework.test import APIClient

from annotation.models import Box, BoxJob, Campaign, Candidate
from tests.annotation.boxes.conftest import CIRCLE
from tests.annotation.hits.conftest import make_candidates, qualify


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_boxes_are_switched_on_at_creation_and_off_later_and_the_summary_follows(researcher, crowd):
    api = client_for(researcher)
    response = api.post("/api/v1/campaigns/", {"name": "c", "wnids": [CIRCLE], "boxes_enabled": True}, format="json")
    assert response.status_code == 201, response.content
    campaign_id = response.json()["id"]
    assert response.json()["policy"]["boxes_enabled"] is True
    candidates = make_candidates(CIRCLE, 3)
    Candidate.objects.filter(id__in=[c.id for c in candidates]).update(state=Candidate.State.ACCEPTED)
    assert api.post(f"/api/v1/campaigns/{campaign_id}/state/", {"state": "running"}, format="json").status_code == 200
    campaign = Campaign.objects.get(id=campaign_id)
    for member in crowd[:2]:
        qualify(member, campaign)
    worker = client_for(crowd[0])

    # Accepted images enter the pipeline when a worker asks for drawing work.
    task = worker.post(f"/api/v1/campaigns/{campaign_id}/boxes/draw/next/")
    assert task.status_code == 200 and task.json()["items"], task.content
    summary = api.get(f"/api/v1/campaigns/{campaign_id}/dashboard/summary/").json()
    assert summary["boxes_enabled"] is True
    assert summary["boxes"]["images"] == 3 and summary["boxes"]["draw"] == 3 and summary["boxes"]["boxes"] == 0
    assert set(summary["boxes"]) == {*BoxJob.State.values, "images", "boxes"}

    response = api.patch(f"/api/v1/campaigns/{campaign_id}/", {"boxes_enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["policy"]["boxes_enabled"] is False
    refused = client_for(crowd[1]).post(f"/api/v1/campaigns/{campaign_id}/boxes/draw/next/")
    assert refused.status_code == 409 and "does not collect boxes" in refused.json()["detail"]
    summary = api.get(f"/api/v1/campaigns/{campaign_id}/dashboard/summary/").json()
    assert summary["boxes_enabled"] is False and summary["boxes"]["images"] == 3  # what was collected stays shown


def test_a_campaign_that_never_collected_boxes_has_no_box_figures(researcher):
    api = client_for(researcher)
    campaign_id = api.post("/api/v1/campaigns/", {"name": "c", "wnids": [CIRCLE]}, format="json").json()["id"]
    summary = api.get(f"/api/v1/campaigns/{campaign_id}/dashboard/summary/").json()
    assert summary["boxes_enabled"] is False and summary["boxes"] is None
    response = api.patch(f"/api/v1/campaigns/{campaign_id}/", {"boxes_enabled": "maybe"}, format="json")
    assert response.status_code == 400 and "boxes_enabled" in response.content.decode()


def test_the_synset_candidates_carry_their_final_boxes_for_the_researcher(box_campaign, researcher) -> None:
    job = BoxJob.objects.filter(campaign=box_campaign).order_by("id").first()
    Box.objects.create(job=job, candidate=job.candidate, x1=10, y1=20, x2=110, y2=220, state=Box.State.ACCEPTED)
    Box.objects.create(job=job, candidate=job.candidate, x1=5, y1=5, x2=50, y2=50, state=Box.State.REJECTED)
    url = f"/api/v1/campaigns/{box_campaign.id}/synsets/{CIRCLE}/candidates/?state=accepted"
    rows = {row["id"]: row for row in client_for(researcher).get(url).json()["results"]}
    assert rows[job.candidate_id]["boxes"] == [[10, 20, 110, 220]]  # the rejected box is not shown
    assert (rows[job.candidate_id]["width"], rows[job.candidate_id]["height"]) == (640, 480)
    assert all(row["boxes"] == [] for key, row in rows.items() if key != job.candidate_id)


def test_the_dashboard_lets_accepted_images_enter_the_pipeline_before_any_worker_asks(
    researcher, django_capture_on_commit_callbacks
):
    # The embedded default runs no Celery beat: without this, the Boxes panel showed nothing waiting for a box
    # until a worker opened the drawing page.
    api = client_for(researcher)
    campaign_id = api.post(
        "/api/v1/campaigns/", {"name": "c", "wnids": [CIRCLE], "boxes_enabled": True}, format="json"
    ).json()["id"]
    candidates = make_candidates(CIRCLE, 4)
    Candidate.objects.filter(id__in=[c.id for c in candidates[:3]]).update(state=Candidate.State.ACCEPTED)
    assert not BoxJob.objects.exists()

    assert api.post(f"/api/v1/campaigns/{campaign_id}/state/", {"state": "running"}, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True) as queued:
        summary = api.get(f"/api/v1/campaigns/{campaign_id}/dashboard/summary/").json()
    assert len(queued) == 1 and summary["boxes"]["images"] == 0  # the entering task, queued on commit
    summary = api.get(f"/api/v1/campaigns/{campaign_id}/dashboard/summary/").json()  # the next poll
    assert summary["boxes"]["draw"] == 3 and summary["boxes"]["images"] == 3
    assert set(BoxJob.objects.values_list("candidate_id", flat=True)) == {c.id for c in candidates[:3]}
