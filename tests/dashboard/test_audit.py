"""The precision audit: a researcher judges accepted images that the audit draws at random, and the verdicts
give the sampled precision (with its 95% Wilson interval) beside the model's estimate for the same images — on
the synset's audit API, the dashboard's quality panel, and what bad requests get."""

import pytest
from rest_framework.test import APIClient

from annotation.models import AuditJudgement, Candidate
from annotation.selectors.dashboard import AUDIT_WINDOW
from tests.annotation.hits.conftest import make_candidates, make_gold
from tests.dashboard.conftest import CIRCLE, TRIANGLE


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def audit_url(seeded, **query) -> str:
    base = f"/api/v1/campaigns/{seeded.campaign.id}/synsets/{CIRCLE}/audit/"
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def verdict_url(seeded, candidate_id: int) -> str:
    return f"/api/v1/campaigns/{seeded.campaign.id}/candidates/{candidate_id}/audit/"


def accepted_more(count: int, posterior: float = 0.995) -> list[int]:
    extra = make_candidates(CIRCLE, count)
    Candidate.objects.filter(id__in=[c.id for c in extra]).update(state="accepted", posterior=posterior)
    return [c.id for c in extra]


def test_the_audit_draws_every_accepted_image_in_a_fixed_order_nobody_chooses(api, seeded):
    extra = accepted_more(30)
    gold = make_gold(CIRCLE, 1)[0].candidate
    Candidate.objects.filter(id=gold.id).update(state="accepted")  # a gold item's answer is known: never drawn
    accepted = {seeded.candidates[0].id, seeded.candidates[1].id, *extra}

    drawn = api.get(audit_url(seeded, limit=AUDIT_WINDOW))
    assert drawn.status_code == 200
    order = [c["id"] for c in drawn.json()["sample"]]
    assert set(order) == accepted and len(order) == 32  # neither the rejected, the voting nor the gold one
    assert order != sorted(order)  # a random order, not by id (a 1 in 32! chance otherwise)
    assert [c["id"] for c in api.get(audit_url(seeded, limit=AUDIT_WINDOW)).json()["sample"]] == order  # a reload
    assert [c["id"] for c in api.get(audit_url(seeded)).json()["sample"]] == order[:12]  # 12 by default
    assert drawn.json()["summary"] == {
        "judged": 0, "correct": 0, "precision": None, "wilson95": None, "model_estimate": None,
        "wrong_still_accepted": [], "unjudged": 32,
    }  # fmt: skip

    # A judged image leaves the draw; the others keep their order.
    assert api.post(verdict_url(seeded, order[0]), {"correct": True}, format="json").status_code == 201
    assert [c["id"] for c in api.get(audit_url(seeded, limit=AUDIT_WINDOW)).json()["sample"]] == order[1:]


def test_verdicts_give_the_sampled_precision_beside_the_model_estimate(api, seeded, researcher):
    first, second = seeded.candidates[0], seeded.candidates[1]  # accepted at 0.99 and 0.97
    right = api.post(verdict_url(seeded, first.id), {"correct": True}, format="json")
    assert right.status_code == 201
    wrong = api.post(verdict_url(seeded, second.id), {"correct": False}, format="json")
    assert wrong.status_code == 201
    summary = {
        "judged": 2, "correct": 1, "precision": 0.5, "wilson95": [0.0945, 0.9055], "model_estimate": 0.98,
        "wrong_still_accepted": [second.id], "unjudged": 0,
    }  # fmt: skip
    assert wrong.json() == {"candidate": second.id, "correct": False, "summary": summary}
    assert api.get(audit_url(seeded)).json() == {"summary": summary, "sample": []}
    judgement = AuditJudgement.objects.get(candidate=second)
    assert (judgement.posterior, judgement.judged_by, judgement.campaign) == (0.97, researcher, seeded.campaign)
    # The audit measures; the candidates keep their consensus state until someone overrides it.
    assert set(Candidate.objects.filter(id__in=[first.id, second.id]).values_list("state", flat=True)) == {"accepted"}

    quality = api.get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/quality/?synsets=false").json()
    assert quality["audit"] == {k: v for k, v in summary.items() if k != "unjudged"}

    # Rejected by an override, the wrong one is no longer listed as still accepted; its verdict still counts.
    override = api.post(
        f"/api/v1/campaigns/{seeded.campaign.id}/candidates/{second.id}/override/", {"action": "reject"}, format="json"
    )
    assert override.status_code == 201
    after = api.get(audit_url(seeded)).json()["summary"]
    assert (after["judged"], after["correct"], after["wrong_still_accepted"]) == (2, 1, [])


def test_the_progress_table_shows_each_synsets_audit_and_flags_an_over_confident_model(api, seeded):
    first, second = seeded.candidates[0], seeded.candidates[1]  # accepted at 0.99 and 0.97
    progress_url = f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/progress/"

    def rows(**query):
        data = api.get(progress_url, query).json()
        return {s["wnid"]: (s["audit"], s["overconfident"]) for s in data["synsets"]}, data

    before, data = rows()
    assert before == {CIRCLE: (None, False), TRIANGLE: (None, False)}
    assert (data["totals"]["audited"], data["totals"]["overconfident"]) == (0, 0)

    api.post(verdict_url(seeded, first.id), {"correct": True}, format="json")
    api.post(verdict_url(seeded, second.id), {"correct": True}, format="json")
    both_right, _ = rows()
    # Two of two right: the interval (34%-100%) holds the model's 98%, so nothing is flagged.
    assert both_right[CIRCLE] == (
        {"judged": 2, "correct": 2, "precision": 1.0, "wilson95": [0.3424, 1.0], "model_estimate": 0.98},
        False,
    )

    api.post(verdict_url(seeded, second.id), {"correct": False}, format="json")
    one_wrong, data = rows(sort="audit")
    # One of two: the interval (9%-91%) lies below the model's 98% for the same images.
    assert one_wrong[CIRCLE] == (
        {"judged": 2, "correct": 1, "precision": 0.5, "wilson95": [0.0945, 0.9055], "model_estimate": 0.98},
        True,
    )
    assert one_wrong[TRIANGLE] == (None, False)
    assert [s["wnid"] for s in data["synsets"]] == [CIRCLE, TRIANGLE]  # over-confident first, unaudited last
    assert (data["totals"]["audited"], data["totals"]["overconfident"]) == (1, 1)
    # The same figures as the synset's own audit summary.
    summary = api.get(audit_url(seeded)).json()["summary"]
    assert {k: summary[k] for k in one_wrong[CIRCLE][0]} == one_wrong[CIRCLE][0]


def test_the_same_verdict_again_changes_nothing_and_a_changed_one_replaces_it(api, seeded):
    candidate = seeded.candidates[0]
    assert api.post(verdict_url(seeded, candidate.id), {"correct": True}, format="json").status_code == 201
    again = api.post(verdict_url(seeded, candidate.id), {"correct": True}, format="json")
    assert again.status_code == 200 and again.json()["summary"]["judged"] == 1
    changed = api.post(verdict_url(seeded, candidate.id), {"correct": False}, format="json")
    assert changed.status_code == 201
    assert (changed.json()["summary"]["correct"], changed.json()["summary"]["judged"]) == (0, 1)
    assert AuditJudgement.objects.get().correct is False


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"correct": "maybe"}, "Must be a valid boolean."),
        ({}, "This field is required."),
        ({"correct": None}, "This field may not be null."),
    ],
    ids=["not a boolean", "missing", "null"],
)
def test_a_verdict_that_is_not_yes_or_no_is_refused(api, seeded, body, detail):
    response = api.post(verdict_url(seeded, seeded.candidates[0].id), body, format="json")
    assert response.status_code == 400 and detail in str(response.json())
    assert not AuditJudgement.objects.exists()


def test_only_accepted_drawn_images_of_the_campaign_can_be_judged(api, seeded):
    rejected, voting = seeded.candidates[2], seeded.candidates[3]
    for candidate, state in [(rejected, "rejected"), (voting, "voting")]:
        response = api.post(verdict_url(seeded, candidate.id), {"correct": True}, format="json")
        assert response.status_code == 409
        assert response.json()["detail"] == (
            f"Candidate {candidate.id} is {state}; the audit judges accepted candidates only."
        )
    gold = make_gold(CIRCLE, 1)[0].candidate
    Candidate.objects.filter(id=gold.id).update(state="accepted")
    response = api.post(verdict_url(seeded, gold.id), {"correct": True}, format="json")
    assert response.status_code == 409 and "is a gold item" in response.json()["detail"]
    outside = Candidate.objects.create(image=seeded.candidates[0].image, synset_id=int("n02084071"[1:]))
    assert api.post(verdict_url(seeded, outside.id), {"correct": True}, format="json").status_code == 404
    assert api.post(verdict_url(seeded, 10**9), {"correct": True}, format="json").status_code == 404

    # Beyond the next AUDIT_WINDOW images of the draw: picking which images to judge would bias the sample.
    accepted_more(AUDIT_WINDOW + 5)
    drawn = [c["id"] for c in api.get(audit_url(seeded, limit=AUDIT_WINDOW)).json()["sample"]]
    accepted = Candidate.objects.filter(state="accepted", gold__isnull=True).values_list("id", flat=True)
    beyond = set(accepted) - set(drawn)
    assert len(beyond) == 7
    late = min(beyond)
    response = api.post(verdict_url(seeded, late), {"correct": True}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Candidate {late} is not among the next {AUDIT_WINDOW} images this synset's audit drew; "
        "judge the images the audit draws, so that the sample stays random."
    )
    assert not AuditJudgement.objects.exists()


@pytest.mark.parametrize("limit", ["0", str(AUDIT_WINDOW + 1), "many", "-3"])
def test_an_audit_page_size_out_of_range_is_refused(api, seeded, limit):
    response = api.get(audit_url(seeded, limit=limit))
    assert response.status_code == 400 and "limit" in response.json()["detail"]


def test_another_researcher_cannot_see_or_judge_the_campaigns_audit(seeded, other_researcher):
    client = APIClient()
    client.force_authenticate(other_researcher)
    assert client.get(audit_url(seeded)).status_code == 404
    verdict = client.post(verdict_url(seeded, seeded.candidates[0].id), {"correct": False}, format="json")
    assert verdict.status_code == 404
    assert not AuditJudgement.objects.exists()
