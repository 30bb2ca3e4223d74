"""The Django admin as an admin of a labelling deployment uses it, as a superuser with real requests: the rows that
are records (votes, HITs, imports, gold answers, ledger entries, qualifications, dataset versions) and the figures
jobs derive cannot be changed or deleted there; a change the admin may make goes through the same service as the
researcher pages; every page still renders, and the vote list does not count the vote table."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation.models import (
    Campaign,
    CampaignSynset,
    Candidate,
    DecisionOverride,
    GoldItem,
    Hit,
    Image,
    ImportBatch,
    ImportItem,
    Vote,
    WorkerAction,
)
from annotation.services.campaigns import campaign_create, gold_item_create
from export.models import DatasetVersion
from tests.annotation.hits.conftest import make_candidates
from workers.models import LedgerEntry, Qualification, WorkerProfile

from .conftest import CIRCLE, TRIANGLE, campaign_form

RECORDS = [Campaign, CampaignSynset, Candidate, DecisionOverride, GoldItem, Hit, Image, ImportBatch, ImportItem, Vote,
           WorkerAction, DatasetVersion, LedgerEntry, Qualification, WorkerProfile, User]  # fmt: skip


def database() -> dict:
    """Every row of the tables the admin could touch, by table: the denials below must leave all of them as
    they were."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in RECORDS}


@pytest.fixture
def world(seeded, admin):
    """The seeded campaign (two HITs, eight votes, two ledger entries) plus an import batch with an item, a gold
    item and a dataset version, and a client signed in as the admin (a Django superuser)."""
    batch = ImportBatch.objects.create(synset_id=int(CIRCLE[1:]), source=ImportBatch.Source.FOLDER, status="done")
    ImportItem.objects.create(batch=batch, name="a.jpg", outcome="accepted", candidate=seeded.candidates[0])
    (spare,) = make_candidates(CIRCLE, 1)
    gold_item_create(candidate=spare, present=True)
    version = DatasetVersion.objects.create(name="shapes", version=1, options={}, status="done", images=2, labels=2)
    version.campaigns.add(seeded.campaign)
    client = Client()
    client.force_login(admin)
    seeded.client, seeded.batch, seeded.version, seeded.admin = client, batch, version, admin
    return seeded


def _objects(world) -> dict[str, object]:
    """One row per registered model (its admin URL's app/model), to open and to try to change or delete."""
    return {
        "annotation/vote": Vote.objects.order_by("id").first(),
        "annotation/hit": world.hits[0],
        "annotation/candidate": world.candidates[0],
        "annotation/golditem": GoldItem.objects.get(),
        "annotation/importbatch": world.batch,
        "annotation/image": world.candidates[0].image,
        "annotation/campaign": world.campaign,
        "workers/workerprofile": WorkerProfile.objects.get(user=world.worker),
        "workers/qualification": Qualification.objects.order_by("id").first(),
        "workers/ledgerentry": LedgerEntry.objects.order_by("id").first(),
        "export/datasetversion": world.version,
        "auth/user": world.worker,
        "auth/group": Group.objects.order_by("id").first(),
    }


# What no admin may do to these rows: change (a record, or every field derived by a job) or delete (it would take
# votes with it, or it is what a version published, or what pay and figures were computed from).
READ_ONLY = ["annotation/vote", "annotation/hit", "annotation/candidate", "annotation/golditem",
             "annotation/importbatch", "workers/qualification", "workers/ledgerentry",
             "export/datasetversion"]  # fmt: skip
UNDELETABLE = [*READ_ONLY, "annotation/campaign", "workers/workerprofile", "auth/user"]


def test_every_admin_page_renders_for_the_admin(world):
    for path, obj in _objects(world).items():
        assert world.client.get(f"/admin/{path}/").status_code == 200, path
        assert world.client.get(f"/admin/{path}/{obj.pk}/change/").status_code == 200, path


@pytest.mark.parametrize("path", READ_ONLY)
def test_a_record_cannot_be_added_or_changed_in_the_admin(world, path):
    obj = _objects(world)[path]
    before = database()
    page = world.client.get(f"/admin/{path}/{obj.pk}/change/").content.decode()
    changed = world.client.post(f"/admin/{path}/{obj.pk}/change/", {"answer": "0", "state": "rejected"})
    added = world.client.post(f"/admin/{path}/add/", {"answer": "0"})
    assert 'name="_save"' not in page  # shown, nothing to save
    assert (changed.status_code, added.status_code) == (403, 403)
    assert database() == before


@pytest.mark.parametrize("path", UNDELETABLE)
def test_a_record_cannot_be_deleted_in_the_admin(world, path):
    obj = _objects(world)[path]
    before = database()
    one = world.client.post(f"/admin/{path}/{obj.pk}/delete/", {"post": "yes"})
    world.client.post(f"/admin/{path}/", {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert one.status_code == 403
    assert database() == before


def test_a_campaign_that_never_ran_can_be_deleted(world, researcher):
    draft = campaign_create(owner=researcher, name="draft", wnids=[TRIANGLE])
    response = world.client.post(f"/admin/annotation/campaign/{draft.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(Campaign.objects.values_list("id", flat=True)) == [world.campaign.id]


def test_a_policy_change_in_the_admin_goes_through_the_policy_service(world):
    campaign = world.campaign
    Campaign.objects.filter(id=campaign.id).update(votes_at_refit=8)
    form = campaign_form(world.client, campaign, confidence="0.95", name="shapes 2")
    response = world.client.post(f"/admin/annotation/campaign/{campaign.id}/change/", form)
    assert response.status_code == 302
    campaign.refresh_from_db()
    # The service marks the campaign due for a refit after a change of its decision policy (a raw save did not).
    assert (campaign.name, campaign.confidence, campaign.votes_at_refit) == ("shapes 2", 0.95, 0)


def test_the_admin_refuses_a_state_change_the_campaign_cannot_make(world):
    before = database()
    form = campaign_form(world.client, world.campaign, state="draft")
    response = world.client.post(f"/admin/annotation/campaign/{world.campaign.id}/change/", form)
    assert response.status_code == 200
    assert "A running campaign cannot become draft." in response.content.decode()
    assert database() == before


def test_the_admin_cannot_change_what_jobs_derive_on_a_worker_profile(world):
    profile = WorkerProfile.objects.get(user=world.worker)
    before = database()
    response = world.client.post(
        f"/admin/workers/workerprofile/{profile.pk}/change/",
        {"user": world.worker.id, "external_id": "", "hits_done": 99, "answers": 99, "blocked": "on",
         "blocked_reason": "by hand", "reliability": 0.1},
    )  # fmt: skip
    assert response.status_code == 302
    assert database() == before


def test_the_admin_cannot_delete_a_worker_with_votes(world):
    before = database()
    response = world.client.post(f"/admin/auth/user/{world.worker.id}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert database() == before


def test_the_vote_list_does_not_count_the_vote_table(world):
    with CaptureQueriesContext(connection) as queries:
        response = world.client.get("/admin/annotation/vote/")
    assert response.status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and '"annotation_vote"' in q["sql"]]
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_the_label_set_is_shown_not_edited_in_the_campaign_admin(world):
    before = database()
    page = world.client.get(f"/admin/annotation/campaign/{world.campaign.id}/change/").content.decode()
    tampered = campaign_form(world.client, world.campaign) | {
        "campaign_synsets-TOTAL_FORMS": 3, "campaign_synsets-INITIAL_FORMS": 2,
        "campaign_synsets-0-id": CampaignSynset.objects.order_by("id")[0].id, "campaign_synsets-0-DELETE": "on",
        "campaign_synsets-1-id": CampaignSynset.objects.order_by("id")[1].id, "campaign_synsets-1-accepted": 99,
        "campaign_synsets-2-synset": 1740, "campaign_synsets-2-campaign": world.campaign.id,
    }  # fmt: skip
    world.client.post(f"/admin/annotation/campaign/{world.campaign.id}/change/", tampered)
    assert "n13873502 circle.n.01" in page  # listed
    assert 'name="campaign_synsets-0-synset"' not in page and 'name="campaign_synsets-0-DELETE"' not in page
    assert database() == before


def _profile_action(world, action: str, reason: str):
    profile = WorkerProfile.objects.get(user=world.other_worker)
    data = {"action": action, "_selected_action": [profile.pk], "reason": reason, "index": 0}
    return world.client.post("/admin/workers/workerprofile/", data, follow=True)


def test_the_admin_blocks_and_unblocks_a_worker_through_the_service_with_a_reason(world):
    _profile_action(world, "block_everywhere", "copy-paste bot")
    profile = WorkerProfile.objects.get(user=world.other_worker)
    assert (profile.blocked, profile.blocked_reason) == (True, "copy-paste bot")
    assert Qualification.objects.get(worker=world.other_worker, campaign=world.campaign).status == "blocked"
    _profile_action(world, "unblock_everywhere", "human after all")
    profile.refresh_from_db()
    assert (profile.blocked, profile.blocked_reason) == (False, "")
    assert Qualification.objects.get(worker=world.other_worker, campaign=world.campaign).status == "qualified"
    assert list(WorkerAction.objects.order_by("id").values_list("action", "campaign", "reason", "created_by")) == [
        ("block", None, "copy-paste bot", world.admin.id), ("unblock", None, "human after all", world.admin.id),
    ]  # fmt: skip


def test_a_block_without_a_reason_is_refused_with_the_services_sentence(world):
    before = database()
    response = _profile_action(world, "block_everywhere", " ")
    assert [str(m) for m in response.context["messages"]] == [
        "other_worker: Give a reason: the worker and other admins will read it."
    ]
    assert database() == before
