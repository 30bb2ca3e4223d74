"""Campaign management over the API: create from a label set, change state, inspect a synset, override or
re-open decisions (recorded), gold from candidates and by promotion."""

import pytest
from rest_framework.test import APIClient

from annotation.models import Campaign, CampaignSynset, Candidate, DecisionOverride, GoldItem
from tests.annotation.hits.conftest import make_gold
from tests.dashboard.conftest import CIRCLE, TRIANGLE


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def test_create_campaign_from_a_label_set_with_policy(api, researcher):
    response = api.post(
        "/api/v1/campaigns/",
        {"name": "shapes", "wnids": [CIRCLE, TRIANGLE], "target_per_synset": 50, "reward_per_hit": "0.25"},
        format="json",
    )
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(id=response.json()["id"])
    assert (campaign.owner, campaign.state, campaign.target_per_synset, str(campaign.reward_per_hit)) == (
        researcher, "draft", 50, "0.25",
    )  # fmt: skip
    assert response.json()["synsets"] == [CIRCLE, TRIANGLE]


def test_overlapping_label_set_is_refused_and_nothing_is_created(api):
    shape = "n13862780"  # shape.n.02, an ancestor of circle
    response = api.post("/api/v1/campaigns/", {"name": "x", "wnids": [shape, CIRCLE]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"The label set overlaps: {shape} is an ancestor of {CIRCLE} (1 pair)."
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("wnids", [["n99999999"], [CIRCLE, "n99999999"]], ids=["all unknown", "one unknown"])
def test_unknown_synsets_are_named_whether_or_not_the_list_has_known_ones(api, wnids):
    response = api.post("/api/v1/campaigns/", {"name": "x", "wnids": wnids}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Unknown synsets: n99999999."
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("name", "hidden"), [("\u202egpj.exe", "U+202E"), ("dogs\nand cats", "U+000A"), ("a\tb", "U+0009")]
)
def test_a_name_with_control_or_direction_characters_is_refused(api, name, hidden):
    response = api.post("/api/v1/campaigns/", {"name": name, "wnids": [CIRCLE]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"A campaign name may not hold control or text-direction characters ({hidden})."
    assert not Campaign.objects.exists()
    assert api.post("/api/v1/campaigns/", {"name": "شبکه\u200cها", "wnids": [CIRCLE]}, format="json").status_code == 201


def test_an_empty_label_set_needs_a_synset(researcher):
    from annotation.errors import AnnotationError
    from annotation.services.campaigns import campaign_create

    with pytest.raises(AnnotationError) as refused:
        campaign_create(owner=researcher, name="x", wnids=[])
    assert refused.value.message == "A campaign needs at least one synset."
    assert not Campaign.objects.exists()


def test_invalid_policy_is_refused(api):
    response = api.post("/api/v1/campaigns/", {"name": "x", "wnids": [CIRCLE], "min_votes": 5, "max_votes": 2},
                        format="json")  # fmt: skip
    assert response.status_code == 400
    assert response.json()["detail"] == "min_votes cannot be more than max_votes."
    huge = api.post("/api/v1/campaigns/", {"name": "x", "wnids": [CIRCLE], "lease_seconds": 999_999_999_999},
                    format="json")  # fmt: skip
    assert huge.status_code == 400 and huge.json()["detail"].startswith("lease_seconds:")
    assert not Campaign.objects.exists()


def test_accuracy_bar_is_set_at_creation_and_changed_later_within_its_range(api):
    response = api.post("/api/v1/campaigns/", {"name": "x", "wnids": [CIRCLE], "min_worker_accuracy": 0.99},
                        format="json")  # fmt: skip
    assert response.status_code == 400 and "from 0 (no bar) to 0.95" in response.content.decode()
    assert not Campaign.objects.exists()
    response = api.post("/api/v1/campaigns/", {"name": "x", "wnids": [CIRCLE]}, format="json")
    assert response.json()["policy"]["min_worker_accuracy"] == 0.65  # the default bar
    url = f"/api/v1/campaigns/{response.json()['id']}/"
    assert api.patch(url, {"min_worker_accuracy": 0}, format="json").json()["policy"]["min_worker_accuracy"] == 0
    assert Campaign.objects.get().min_worker_accuracy == 0.0


def test_label_set_expansion_modes(api):
    get = lambda mode: api.get("/api/v1/campaigns/label-set/expand/", {"root": "n02084071", "mode": mode}).json()  # noqa: E731
    assert get("self")["wnids"] == ["n02084071"]
    children = get("children")["wnids"]
    assert "n02085374" in children  # toy dog
    leaves = get("leaves")["wnids"]
    assert "n02091244" in leaves and "n02085374" not in leaves  # Ibizan hound, not the toy-dog group
    assert len(get("subtree")["wnids"]) == 190  # dog.n.01 and its 189 descendants


def test_a_label_set_is_picked_and_a_synset_found_by_the_name_the_pages_show(api):
    # The pages name synsets dog.n.01; the picker and the search took only a wnid or words.
    by_name = api.get("/api/v1/campaigns/label-set/expand/", {"root": "Dog.N.01", "mode": "self"})
    assert (by_name.status_code, by_name.json()["wnids"]) == (200, ["n02084071"])
    missing = api.get("/api/v1/campaigns/label-set/expand/", {"root": "nosuch.n.01", "mode": "self"})
    assert (missing.status_code, missing.json()["detail"]) == (404, "No synset nosuch.n.01 in this database.")
    found = api.get("/api/v1/synsets/", {"q": "dog.n.01"}).json()
    assert [s["wnid"] for s in found["results"]] == ["n02084071"]


def test_state_changes_start_pause_resume_finish(api, seeded):
    url = f"/api/v1/campaigns/{seeded.campaign.id}/state/"
    assert api.post(url, {"state": "paused"}, format="json").json()["state"] == "paused"
    assert api.post(url, {"state": "running"}, format="json").json()["state"] == "running"
    assert api.post(url, {"state": "finished"}, format="json").json()["state"] == "finished"
    response = api.post(url, {"state": "running"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict"


def test_summary_offers_only_the_state_changes_allowed(api, seeded):
    summary = lambda: api.get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/summary/").json()  # noqa: E731
    assert summary()["next_states"] == ["finished", "paused"]
    api.post(f"/api/v1/campaigns/{seeded.campaign.id}/state/", {"state": "paused"}, format="json")
    assert summary()["next_states"] == ["finished", "running"]
    api.post(f"/api/v1/campaigns/{seeded.campaign.id}/state/", {"state": "finished"}, format="json")
    assert summary()["next_states"] == []


def test_policy_change_applies_and_re_evaluates_decisions(api, seeded, django_capture_on_commit_callbacks):
    url = f"/api/v1/campaigns/{seeded.campaign.id}/"
    Candidate.objects.update(priority=0)  # the fixture's per-HIT consensus jobs count as done
    hand_set = dict(Candidate.objects.values_list("id", "posterior"))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(url, {"target_per_synset": 3, "reward_per_hit": "0.30", "confidence": 0.999},
                             format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    policy = response.json()["policy"]
    assert (policy["target_per_synset"], policy["reward_per_hit"], policy["confidence"]) == (3, "0.30", 0.999)
    campaign = Campaign.objects.get(id=seeded.campaign.id)
    assert (campaign.target_per_synset, str(campaign.reward_per_hit), campaign.confidence) == (3, "0.30", 0.999)
    # The confidence changed, so the refit job (eager here) re-evaluated the candidates from their votes:
    # the fixture's hand-set posteriors are replaced by the model's.
    assert campaign.refitted is not None and campaign.votes_at_refit == 7
    assert dict(Candidate.objects.values_list("id", "posterior")) != hand_set


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"min_votes": 5, "max_votes": 2}, 400, "The policy is not valid: min_votes cannot be more than max_votes."),
        ({"confidence": 1.5}, 400, "confidence"),
        # bounds past which a lease's expiry or a quiz retry's date overflowed (500s on SQLite)
        ({"lease_seconds": 999_999_999_999}, 400, "lease_seconds: Ensure this value is less than or equal to 86400."),
        ({"quiz_retry_seconds": 10**15}, 400, "quiz_retry_seconds: Ensure this value is less than or equal to 2592000"),
        ({"quiz_size": 10**11}, 400, "quiz_size"),
        ({"max_votes": 1000}, 400, "max_votes"),
        ({"reward_per_hit": "1e5"}, 400, "reward_per_hit: Ensure this value is less than or equal to 100."),
        ({"reward_per_hit": "-0.10"}, 400, "reward_per_hit: Ensure this value is greater than or equal to 0."),
        ({"target_per_synset": 10**10}, 400, "target_per_synset"),
        ({"min_worker_accuracy": 0.96}, 400, "least worker accuracy is a share from 0 (no bar) to 0.95"),
        ({"min_worker_accuracy": -0.1}, 400, "least worker accuracy is a share from 0 (no bar) to 0.95"),
        ({"min_worker_accuracy": "high"}, 400, "min_worker_accuracy"),
        ({"images_per_hit": "many"}, 400, "images_per_hit"),
        ({"name": "renamed"}, 400, "cannot be changed"),
        ({}, 400, "at least one"),
    ],
)
def test_invalid_policy_change_is_refused_and_changes_nothing(api, seeded, body, status, words):
    before = Campaign.objects.values().get(id=seeded.campaign.id)
    response = api.patch(f"/api/v1/campaigns/{seeded.campaign.id}/", body, format="json")
    assert response.status_code == status and words in response.json()["detail"], response.content
    assert Campaign.objects.values().get(id=seeded.campaign.id) == before


def test_finished_campaign_policy_is_frozen_and_others_cannot_change_it(api, seeded, other_researcher, worker):
    url = f"/api/v1/campaigns/{seeded.campaign.id}/"
    for user, status in [(other_researcher, 404), (worker, 403)]:
        client = APIClient()
        client.force_authenticate(user)
        assert client.patch(url, {"target_per_synset": 9}, format="json").status_code == status
    api.post(f"{url}state/", {"state": "finished"}, format="json")
    response = api.patch(url, {"target_per_synset": 9}, format="json")
    assert response.status_code == 409 and "finished" in response.json()["detail"]
    assert Campaign.objects.get(id=seeded.campaign.id).target_per_synset == 2


def test_synset_overview_has_counts_and_the_confidence_table(api, seeded):
    data = api.get(f"/api/v1/campaigns/{seeded.campaign.id}/synsets/{CIRCLE}/").json()
    documented = api.get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert set(data) == set(documented["CampaignSynsetOverview"]["properties"])
    assert data["counters"] == {"accepted": 2, "rejected": 1, "unresolved": 0, "votes": 7}
    assert data["by_state"] == {"new": 0, "voting": 1, "accepted": 2, "rejected": 1, "unresolved": 0}
    table = data["confidence_table"]
    assert table["items"] == 4 and table["max_total"] == 4
    assert table["table"][2][0] > table["table"][1][1] > table["table"][0][2]  # more yes, more likely present
    assert table["table"][4][1] is None  # beyond the seed's vote count
    make_gold(CIRCLE, 3)  # new candidates with a known answer: counted as gold, not as new
    data = api.get(f"/api/v1/campaigns/{seeded.campaign.id}/synsets/{CIRCLE}/").json()
    assert (data["by_state"]["new"], data["gold"]) == (0, 3)


def test_candidates_by_state_and_disagreements(api, seeded):
    base = f"/api/v1/campaigns/{seeded.campaign.id}/synsets/{CIRCLE}/"
    accepted = api.get(base + "candidates/", {"state": "accepted"}).json()
    assert [c["id"] for c in accepted["results"]] == [c.id for c in seeded.candidates[:2]]
    assert accepted["results"][0]["thumbnail"].endswith(".webp")
    split = api.get(base + "disagreements/").json()
    # Candidate 3 got one yes and one no; the others were unanimous (or one real vote).
    assert [(c["id"], c["yes"], c["votes"]) for c in split["results"]] == [(seeded.candidates[2].id, 1, 2)]


def test_override_changes_state_and_counters_and_is_recorded(api, seeded, researcher):
    candidate = seeded.candidates[2]  # rejected by consensus
    url = f"/api/v1/campaigns/{seeded.campaign.id}/candidates/{candidate.id}/override/"
    response = api.post(url, {"action": "accept", "reason": "clearly a circle"}, format="json")
    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], "candidate": candidate.id, "action": "accept",
                               "previous_state": "rejected", "state": "accepted"}  # fmt: skip
    cs = CampaignSynset.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:]))
    assert (cs.accepted, cs.rejected) == (3, 0)
    record = DecisionOverride.objects.get()
    assert (record.previous_posterior, record.reason, record.created_by) == (0.01, "clearly a circle", researcher)
    again = api.post(url, {"action": "accept"}, format="json")
    assert again.status_code == 409 and DecisionOverride.objects.count() == 1


def test_reopen_puts_a_candidate_back_in_the_queue(api, seeded):
    candidate = seeded.candidates[0]
    url = f"/api/v1/campaigns/{seeded.campaign.id}/candidates/{candidate.id}/override/"
    assert api.post(url, {"action": "reopen"}, format="json").status_code == 201
    candidate.refresh_from_db()
    assert (candidate.state, candidate.priority) == ("voting", 1.0)
    assert CampaignSynset.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:])).accepted == 1


def test_override_of_a_candidate_outside_the_campaign_is_404(api, seeded):
    other = Candidate.objects.create(image=seeded.candidates[0].image, synset_id=int("n02084071"[1:]))
    url = f"/api/v1/campaigns/{seeded.campaign.id}/candidates/{other.id}/override/"
    assert api.post(url, {"action": "accept"}, format="json").status_code == 404
    assert not DecisionOverride.objects.exists()


def test_gold_from_a_candidate_and_by_promotion(api, seeded):
    first, _second, third, fourth = seeded.candidates
    url = f"/api/v1/campaigns/{seeded.campaign.id}/candidates/{fourth.id}/gold/"
    assert api.post(url, {"present": False}, format="json").status_code == 201
    assert GoldItem.objects.get(candidate=fourth).present is False
    assert api.post(url, {"present": True}, format="json").status_code == 409
    Candidate.objects.filter(id__in=[first.id, third.id]).update(votes_count=3)
    promote = api.post(f"/api/v1/campaigns/{seeded.campaign.id}/synsets/{CIRCLE}/gold/promote/", {}, format="json")
    assert promote.json() == {"present": 1, "absent": 1}  # 2nd has 0.97 < 0.99; only 1st and 3rd have 3 votes
    assert dict(GoldItem.objects.values_list("candidate_id", "present")) == {
        first.id: True, third.id: False, fourth.id: False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("dashboard/summary/", "DashboardSummary"),
        ("dashboard/quality/", "Quality"),
        ("dashboard/cost/", "Cost"),
        ("dashboard/progress/", "Progress"),
        (f"synsets/{CIRCLE}/", "CampaignSynsetOverview"),
        (f"synsets/{CIRCLE}/candidates/", "CampaignCandidate"),
    ],
)
def test_each_panel_answers_exactly_the_fields_its_schema_documents(api, seeded, path, component):
    data = api.get(f"/api/v1/campaigns/{seeded.campaign.id}/{path}").json()
    documented = api.get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"][component]
    answered = data["results"][0] if "results" in data else data
    assert set(answered) == set(documented["properties"])


def test_a_sensitive_synset_needs_the_opt_in_and_the_refusal_names_it(api):
    person = "n00007846"  # person.n.01
    response = api.post("/api/v1/campaigns/", {"name": "people", "wnids": [person]}, format="json")
    assert (response.status_code, response.json()["detail"]) == (
        400,
        f"{person} is sensitive (a people category); opt in explicitly with allow_sensitive to label it.",
    )
    opted = api.post(
        "/api/v1/campaigns/", {"name": "people", "wnids": [person], "allow_sensitive": True}, format="json"
    )
    assert opted.status_code == 201
