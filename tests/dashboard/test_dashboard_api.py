"""Every dashboard panel's JSON, with exact values on the seeded campaign (see conftest.seeded)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Campaign, CampaignSynset, Candidate, WorkerAction
from annotation.selectors import dashboard
from annotation.services import refit, rollups
from annotation.services.campaigns import campaign_set_state
from annotation.services.manage import candidate_override
from tests.annotation.hits.conftest import make_candidates, make_gold
from tests.dashboard.conftest import CIRCLE, TRIANGLE
from workers.models import Qualification, WorkerProfile
from workers.roles import Role
from workers.services import account_create


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def get(client, seeded, panel, **params):
    response = client.get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/{panel}/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_summary(seeded, client_for):
    data = get(client_for(seeded.researcher), seeded, "summary")
    assert {
        k: data[k]
        for k in [
            "state",
            "synsets",
            "target",
            "accepted",
            "rejected",
            "unresolved",
            "votes",
            "hits",
            "answers",
            "workers",
            "spent",
            "active_workers_5m",
        ]
    } == {
        "state": "running",
        "synsets": 2,
        "target": 4,
        "accepted": 2,
        "rejected": 1,
        "unresolved": 0,
        "votes": 7,
        "hits": 2,
        "answers": 8,
        "workers": 2,
        "spent": "0.20",
        "active_workers_5m": 2,
    }


def test_a_campaign_without_gold_tells_the_researcher_and_its_workers_that_nobody_can_start(seeded, client_for):
    # Workers qualify through a quiz of gold items; the seeded campaign has none.
    assert get(client_for(seeded.researcher), seeded, "summary")["gold_items"] == 0
    newcomer = Client()
    newcomer.force_login(account_create(username="newcomer", password="pw-newcomer-1", role=Role.WORKER))
    home = newcomer.get("/work/").content.decode()
    assert "not open yet" in home and "has not added the quiz" in home
    assert f'href="/work/{seeded.campaign.id}/quiz/"' not in home

    make_gold(TRIANGLE, 2)
    assert get(client_for(seeded.researcher), seeded, "summary")["gold_items"] == 2
    home = newcomer.get("/work/").content.decode()
    assert "not open yet" not in home and f'href="/work/{seeded.campaign.id}/quiz/"' in home


@pytest.mark.parametrize(
    ("later", "per_minute", "per_hour"),
    [(timedelta(seconds=10), 8.0, 120.0), (timedelta(minutes=3), 2.0, 30.0), (timedelta(minutes=6), 0.0, 0.0)],
)
def test_the_five_minute_rates_of_a_young_campaign_are_over_the_minutes_since_its_first_answer(
    seeded, later, per_minute, per_hour
):
    # 8 answers in 2 HITs, all in the campaign's first minute: two minutes in, dividing by five read 40% of the rate.
    data = dashboard.summary(campaign=seeded.campaign, now=seeded.now + later)
    assert (data["answers_per_minute_5m"], data["hits_per_hour_5m"]) == (per_minute, per_hour)


def test_throughput_last_hour_has_a_point_a_minute(seeded, client_for):
    data = get(client_for(seeded.researcher), seeded, "throughput", window="hour")
    assert data["window"] == "hour" and data["bucket_seconds"] == 60 and len(data["labels"]) == 60
    point = data["labels"].index(seeded.now.replace(second=0).isoformat())
    assert (data["answers_per_minute"][point], data["hits_per_hour"][point], data["active_workers"][point]) == (
        8.0, 120.0, 2,
    )  # fmt: skip
    assert sum(data["answers_per_minute"]) == 8.0
    assert data["totals"] == {"answers": 8, "hits": 2, "answers_per_minute": 0.133, "hits_per_hour": 2.0,
                              "active_workers": 2}  # fmt: skip


def test_throughput_day_and_whole_campaign_use_hours(seeded, client_for):
    client = client_for(seeded.researcher)
    day = get(client, seeded, "throughput", window="day")
    assert day["bucket_seconds"] == 3600 and len(day["labels"]) == 24
    assert sum(day["hits_per_hour"]) == 2.0 and max(day["active_workers"]) == 2
    whole = get(client, seeded, "throughput", window="all")
    assert whole["window"] == "all" and whole["labels"][0] == seeded.now.replace(minute=0, second=0).isoformat()
    assert whole["totals"]["answers"] == 8


def test_throughput_rejects_an_unknown_window(seeded, client_for):
    response = client_for(seeded.researcher).get(
        f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/throughput/", {"window": "week"}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_progress_per_synset_with_flags_and_time_to_finish(seeded, client_for):
    data = get(client_for(seeded.researcher), seeded, "progress")
    circle, triangle = data["synsets"]
    assert circle["wnid"] == CIRCLE and triangle["wnid"] == TRIANGLE
    assert {
        k: circle[k]
        for k in [
            "candidates",
            "open",
            "accepted",
            "rejected",
            "unresolved",
            "votes",
            "answers",
            "done",
            "starved",
            "stuck",
            "short",
            "precision",
            "votes_per_decision",
            "answers_needed",
        ]
    } == {
        "candidates": 4,
        "open": 1,
        "accepted": 2,
        "rejected": 1,
        "unresolved": 0,
        "votes": 7,
        "answers": 8,
        "done": True,
        "starved": False,
        "stuck": False,
        "short": False,
        "precision": 0.98,
        "votes_per_decision": 2.333,
        "answers_needed": 0,
    }
    assert (triangle["candidates"], triangle["starved"], triangle["done"], triangle["answers_needed"]) == (
        0,
        True,
        False,
        8,
    )
    assert data["totals"]["starved"] == 1 and data["totals"]["done"] == 1
    assert circle["look_alikes"] is None  # no refit yet
    # A starved synset cannot finish at any rate: no time is promised, and the note says why.
    assert data["totals"]["eta_minutes"] is None and "no candidates left" in data["totals"]["eta_note"]
    make_candidates(TRIANGLE, 4)
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    # An hour after its first answers: 8 answers still needed (the campaign yields 2 accepted per 8 answers) at
    # 8 answers in the last hour.
    data = dashboard.progress(campaign=seeded.campaign, now=seeded.now + timedelta(minutes=59))
    assert data["answers_per_minute"] == 0.133 and data["totals"]["eta_minutes"] == 60.0
    assert data["totals"]["answers_needed"] == 8 and data["totals"]["eta_note"] == "at the last hour's answer rate"


def test_the_time_to_finish_of_a_young_campaign_is_at_the_rate_since_its_first_answer(seeded, client_for):
    # The demo's dashboard said 6.6 hours to finish six minutes into the campaign (it finished in twenty): the
    # last hour's answers were divided by 60 minutes, 54 of them before the campaign's first answer.
    make_candidates(TRIANGLE, 4)
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    data = dashboard.progress(campaign=seeded.campaign, now=seeded.now + timedelta(minutes=3, seconds=10))
    # 8 answers in the 4 minutes since the first one (that minute included): 2 a minute, 8 still needed.
    assert data["answers_per_minute"] == 2.0
    assert (data["totals"]["answers_needed"], data["totals"]["eta_minutes"]) == (8, 4.0)
    assert data["totals"]["eta_note"] == "at the answer rate of the 4 minutes since the first answer"


def test_progress_finds_sorts_and_pages_synsets_while_totals_cover_them_all(seeded, client_for):
    client = client_for(seeded.researcher)

    def wnids(**params):
        data = get(client, seeded, "progress", **params)
        assert data["totals"]["synsets"] == 2 and data["totals"]["done"] == 1 and data["totals"]["starved"] == 1
        return [s["wnid"] for s in data["synsets"]], data["matched"]

    assert wnids() == ([CIRCLE, TRIANGLE], 2)  # by wnid, all of them
    assert wnids(sort="behind") == ([TRIANGLE, CIRCLE], 2)  # 0 of 2 accepted before 2 of 2
    assert wnids(sort="flags") == ([TRIANGLE, CIRCLE], 2)  # starved first
    assert wnids(sort="precision") == ([CIRCLE, TRIANGLE], 2)  # 0.98 before none yet
    assert wnids(sort="behind", limit=1) == ([TRIANGLE], 2)
    assert wnids(sort="behind", limit=1, offset=1) == ([CIRCLE], 2)
    assert wnids(sort="behind", offset=5) == ([], 2)
    assert wnids(q="  TRIang ") == ([TRIANGLE], 1)  # name, any case, spaces trimmed
    assert wnids(q=CIRCLE[3:]) == ([CIRCLE], 1)  # part of a wnid
    assert wnids(q="dodecahedron") == ([], 0)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"sort": "oldest"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": 10**6}, "limit"),
        ({"offset": -1}, "offset"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_progress_refuses_a_bad_page_with_a_sentence(seeded, client_for, params, field):
    response = client_for(seeded.researcher).get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/progress/", params)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"{field}: ") and body["detail"].endswith(".")
    assert list(body["errors"]) == [field]


def test_a_synset_nobody_reached_yet_is_stuck_only_after_the_campaign_ran_that_long(seeded, client_for, settings):
    make_candidates(TRIANGLE, 4)  # open candidates, never answered, while circle gets answers
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    client = client_for(seeded.researcher)

    def triangle_stuck():
        return get(client, seeded, "progress")["synsets"][1]["stuck"]

    assert triangle_stuck() is False  # the campaign started a moment ago
    Campaign.objects.filter(id=seeded.campaign.id).update(
        running_since=timezone.now() - timedelta(minutes=settings.DASHBOARD_STUCK_MINUTES + 1)
    )
    assert triangle_stuck() is True
    campaign_set_state(campaign=seeded.campaign, state="paused")
    assert triangle_stuck() is False  # a paused campaign has nothing stuck
    campaign_set_state(campaign=seeded.campaign, state="running")
    assert triangle_stuck() is False  # counted again from the resume


def test_a_researchers_accept_against_consensus_leaves_the_estimated_precision_alone(seeded, client_for):
    # In the demo a researcher accepted a circle consensus had rejected at posterior 0.005: the circle's
    # estimated precision fell from 99.9% to 97.2%, as if that label were almost surely wrong. Precision is
    # the mean posterior of consensus decisions; a person's decision has none.
    rejected = seeded.candidates[2]  # rejected at 0.01
    candidate_override(campaign=seeded.campaign, candidate_id=rejected.id, action="accept", by=seeded.researcher)
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    client = client_for(seeded.researcher)
    circle = get(client, seeded, "progress")["synsets"][0]
    assert (circle["accepted"], circle["precision"]) == (3, 0.98)  # (0.99 + 0.97) / 2, not (… + 0.01) / 3
    assert get(client, seeded, "quality")["precision"] == 0.98
    # Handed back to consensus ("reopen") and accepted by it, it counts again.
    candidate_override(campaign=seeded.campaign, candidate_id=rejected.id, action="reopen", by=seeded.researcher)
    Candidate.objects.filter(id=rejected.id).update(state=Candidate.State.ACCEPTED, posterior=0.96)
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    assert get(client, seeded, "quality")["precision"] == 0.9733


def test_progress_of_a_synset_accepted_by_override_before_any_answer(seeded, client_for):
    # A researcher may accept a candidate by hand before anyone answered for its synset: that synset has
    # accepted images and no answers (its own yield is unknown; the campaign's is used). This was a 500.
    (candidate,) = make_candidates(TRIANGLE, 1)
    candidate_override(campaign=seeded.campaign, candidate_id=candidate.id, action="accept", by=seeded.researcher)
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    triangle = get(client_for(seeded.researcher), seeded, "progress")["synsets"][1]
    assert (triangle["accepted"], triangle["answers"], triangle["done"]) == (1, 0, False)
    assert triangle["answers_needed"] == 3  # 1 more accepted at the campaign's 3 accepted per 8 answers


def test_no_time_to_finish_before_anything_is_accepted(seeded, client_for):
    Candidate.objects.filter(state="accepted").update(state="voting")
    refit.campaign_counters_recount(campaign=seeded.campaign)
    make_candidates(TRIANGLE, 4)
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    totals = get(client_for(seeded.researcher), seeded, "progress")["totals"]
    assert totals["accepted"] == 0
    assert totals["eta_minutes"] is None and "no accepted image yet" in totals["eta_note"]
    assert totals["answers_needed"] is None  # not 0: the yield to estimate it by is unknown


def test_tree_rolls_progress_up_to_common_ancestors(seeded, client_for):
    nodes = {n["wnid"]: n for n in get(client_for(seeded.researcher), seeded, "tree")["nodes"]}
    assert nodes[CIRCLE]["member"] and nodes[CIRCLE]["accepted"] == 2 and nodes[CIRCLE]["progress"] == 1.0
    shared = [n for n in nodes.values() if n["synsets"] == 2]
    assert shared and all(n["accepted"] == 2 and n["target"] == 4 and n["progress"] == 0.5 for n in shared)
    assert nodes["n00001740"]["synsets"] == 2  # entity.n.01, the root


def test_quality(seeded, client_for):
    client = client_for(seeded.researcher)
    client.post(
        f"/api/v1/campaigns/{seeded.campaign.id}/workers/{seeded.other_worker.id}/block/",
        {"reason": "Answers at chance"}, format="json",
    )  # fmt: skip
    data = get(client, seeded, "quality")
    assert data["precision"] == 0.98 and data["gold_accuracy"] is None and data["workers"] == 2
    # What the estimate rests on: 99.9% of one label and of ten thousand read alike on the page.
    assert data["precision_labels"] == 2
    assert data["agreement_histogram"] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1] and data["agreement_mean"] == 0.7
    assert data["gold_accuracy_histogram"] == [0] * 10
    assert data["blocked"] == [
        {
            "worker": seeded.other_worker.id,
            "username": "other_worker",
            "reason": "Answers at chance",
            "gold_accuracy": None,
        }
    ]
    circle = next(s for s in data["synsets"] if s["wnid"] == CIRCLE)
    assert (circle["accepted"], circle["precision"]) == (2, 0.98)
    # The dashboard page leaves the per-synset list out (it pages through progress instead).
    lean = get(client, seeded, "quality", synsets="false")
    assert "synsets" not in lean and {k: v for k, v in data.items() if k != "synsets"} == lean
    response = client.get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/quality/", {"synsets": "some"})
    assert response.status_code == 400 and response.json()["detail"].startswith("synsets: ")


def test_cost_and_hourly_pay_against_the_floor(seeded, client_for, settings):
    settings.PAY_FLOOR_PER_HOUR = Decimal("100")
    data = get(client_for(seeded.researcher), seeded, "cost")
    assert {
        k: data[k]
        for k in [
            "spent",
            "accepted",
            "cost_per_accepted",
            "pay_floor_per_hour",
            "median_hourly_pay",
            "workers_below_floor",
        ]
    } == {
        "spent": "0.20",
        "accepted": 2,
        "cost_per_accepted": "0.10",
        "pay_floor_per_hour": "100.00",
        "median_hourly_pay": "135.00",
        "workers_below_floor": 1,
    }
    assert [(w["username"], w["hourly_pay"], w["below_floor"], w["hours"]) for w in data["workers"]] == [
        ("worker", "90.00", True, 0.0011),
        ("other_worker", "180.00", False, 0.0006),
    ]


def test_the_campaigns_page_lists_the_answers_the_dashboard_counts(seeded):
    from django.test import Client

    client = Client()
    client.force_login(seeded.researcher)
    page = client.get("/research/").content.decode()
    assert '<th class="num">Answers</th>' in page
    assert '<td class="num">2 / 4</td><td class="num">8</td>' in page


def test_campaign_list_and_detail(seeded, client_for):
    client = client_for(seeded.researcher)
    listed = client.get("/api/v1/campaigns/").json()
    assert [(c["name"], c["synsets"], c["accepted"], c["target"], c["votes"]) for c in listed] == [
        ("shapes", 2, 2, 4, 7)
    ]
    # The list and the dashboard's headline count the same answers (the list's "Votes 1067" beside the
    # dashboard's "1372 answers" in the demo: gold answers were left out of one and not the other).
    summary = get(client, seeded, "summary")
    assert listed[0]["answers"] == summary["answers"] == 8
    detail = client.get(f"/api/v1/campaigns/{seeded.campaign.id}/").json()
    assert detail["synsets"] == [CIRCLE, TRIANGLE] and detail["policy"]["target_per_synset"] == 2


def test_blocking_is_recorded_and_unblocking_restores(seeded, client_for):
    client = client_for(seeded.researcher)
    url = f"/api/v1/campaigns/{seeded.campaign.id}/workers/{seeded.other_worker.id}/"
    assert client.post(url + "block/", {"reason": "spam"}, format="json").status_code == 201
    status = Qualification.objects.get(worker=seeded.other_worker, campaign=seeded.campaign).status
    assert status == "blocked"
    assert client.post(url + "unblock/", {"reason": "appeal upheld"}, format="json").status_code == 201
    status = Qualification.objects.get(worker=seeded.other_worker, campaign=seeded.campaign).status
    assert status == "qualified"
    from annotation.models import WorkerAction

    assert list(WorkerAction.objects.order_by("id").values_list("action", "reason", "created_by__username")) == [
        ("block", "spam", "researcher"),
        ("unblock", "appeal upheld", "researcher"),
    ]


def test_block_without_a_reason_is_refused_and_changes_nothing(seeded, client_for):
    response = client_for(seeded.researcher).post(
        f"/api/v1/campaigns/{seeded.campaign.id}/workers/{seeded.other_worker.id}/block/",
        {"reason": "  "},
        format="json",
    )
    assert response.status_code == 400
    assert Qualification.objects.get(worker=seeded.other_worker, campaign=seeded.campaign).status == "qualified"


def test_metrics_in_prometheus_format(seeded, client, settings):
    client.force_login(account_create(username="metrics-admin", password=None, role=Role.ADMIN))
    text = client.get("/metrics").content.decode()
    cid = seeded.campaign.id
    assert f'synsight_campaign_answers_total{{campaign="{cid}",name="shapes"}} 8.0' in text
    assert f'synsight_campaign_hits_total{{campaign="{cid}",name="shapes"}} 2.0' in text
    assert f'synsight_campaign_candidates{{campaign="{cid}",name="shapes",state="accepted"}} 2.0' in text
    assert f'synsight_campaign_spent{{campaign="{cid}",name="shapes"}} 0.2' in text
    client.logout()
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_metrics_without_a_token_are_for_admins_only(seeded, client, settings):
    settings.METRICS_TOKEN = ""
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert "admin" in anonymous.content.decode()
    client.force_login(seeded.researcher)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_dashboard_endpoints_are_in_the_openapi_schema(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for panel in ["summary", "throughput", "progress", "tree", "quality", "cost"]:
        assert f"/api/v1/campaigns/{{campaign_id}}/dashboard/{panel}/" in schema


def test_progress_shows_the_share_of_look_alike_negatives_the_last_refit_found(seeded, client_for):
    from annotation.services.refit import campaign_refit

    campaign_refit(campaign_id=seeded.campaign.id)
    circle = get(client_for(seeded.researcher), seeded, "progress")["synsets"][0]
    assert circle["look_alikes"] is None  # four images: too few for the refit to tell kinds apart

    CampaignSynset.objects.filter(campaign=seeded.campaign, synset_id=int(CIRCLE[1:])).update(
        item_kinds={
            "shifts": [-1, -0.5, 0, 0.5, 1, 1.5],
            "absent": [0.2, 0, 0.5, 0.2, 0, 0.1],
            "present": [0, 0, 1, 0, 0, 0],
        }
    )
    circle = get(client_for(seeded.researcher), seeded, "progress")["synsets"][0]
    assert circle["look_alikes"] == 0.3


def test_only_crowd_workers_can_be_blocked(seeded, client_for, admin):
    client = client_for(seeded.researcher)
    for user in (admin, seeded.researcher):  # an admin, and the researcher themself
        response = client.post(
            f"/api/v1/campaigns/{seeded.campaign.id}/workers/{user.id}/block/", {"reason": "x"}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["detail"] == (
            f"{user.username} is an admin or researcher, not a crowd worker; only workers can be blocked."
        )
    assert not WorkerAction.objects.exists()
    assert not WorkerProfile.objects.filter(blocked=True).exists()
