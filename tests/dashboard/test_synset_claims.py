"""One researcher's campaigns label a synset at a time: its candidates are shared by every campaign over it, so
while a researcher's campaign over a synset is unfinished nobody else but an admin may label it in a campaign,
import images for it, override its decisions or set its gold (QA: another researcher made a draft campaign over
the first one's synset and, through it, rejected accepted images and set wrong gold in the running campaign)."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotation.errors import Forbidden
from annotation.models import Campaign, Candidate, DecisionOverride, GoldItem, ImportBatch
from annotation.services.campaigns import campaign_create, campaign_set_state
from annotation.services.images import import_urls_submit
from taxonomy.models import Synset
from tests.annotation.hits.conftest import SHAPES, make_candidates
from tests.concurrency import while_held_open
from tests.wordnet_snapshot import plane_figures_import

pytestmark = pytest.mark.django_db
CIRCLE, TRIANGLE, SQUARE = SHAPES
CLAIMED = (
    "n13873502 is in another researcher's unfinished campaign, and its images are shared by every campaign over it: "
    "only that researcher or an admin may {} until it is finished."
)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_another_researcher_cannot_label_a_synset_of_an_unfinished_campaign_until_it_is_finished(
    researcher, other_researcher, admin
):
    campaign_create(owner=researcher, name="circles", wnids=[CIRCLE])  # a draft claims it already

    with pytest.raises(Forbidden) as refused:
        campaign_create(owner=other_researcher, name="mine too", wnids=[SQUARE, CIRCLE])
    by_api = api(other_researcher).post("/api/v1/campaigns/", {"name": "mine", "wnids": [CIRCLE]}, format="json")

    assert refused.value.message == CLAIMED.format("label it in a campaign")
    assert (by_api.status_code, by_api.json()["detail"]) == (403, CLAIMED.format("label it in a campaign"))
    assert list(Campaign.objects.values_list("name", flat=True)) == ["circles"]
    campaign_create(owner=researcher, name="circles again", wnids=[CIRCLE])  # the same researcher may
    campaign_create(owner=admin, name="admin's circles", wnids=[CIRCLE])  # so may an admin
    for campaign in Campaign.objects.all():  # the admin's campaign claims the synset too, while unfinished
        campaign_set_state(campaign=campaign, state="finished")
    campaign_create(owner=other_researcher, name="mine now", wnids=[CIRCLE, SQUARE])


def test_an_admins_campaign_over_the_synset_leaves_the_researcher_their_own_running_one(
    researcher, other_researcher, admin
):
    running = campaign_set_state(
        campaign=campaign_create(owner=researcher, name="circles", wnids=[CIRCLE]), state="running"
    )
    candidate = make_candidates(CIRCLE, 1)[0]
    campaign_create(owner=admin, name="admin's shapes", wnids=[CIRCLE, SQUARE])  # a draft over the same synset

    # The researcher still runs their campaign: imports, gold, overrides, and another campaign of their own.
    client = api(researcher)
    gold = client.post(
        f"/api/v1/campaigns/{running.id}/candidates/{candidate.id}/gold/", {"present": True}, format="json"
    )
    assert gold.status_code == 201, gold.json()
    campaign_create(owner=researcher, name="circles again", wnids=[CIRCLE])
    # A synset only the admin's campaign has is the admin's, as before; and another researcher is refused both.
    with pytest.raises(Forbidden):
        campaign_create(owner=researcher, name="squares", wnids=[SQUARE])
    with pytest.raises(Forbidden) as refused:
        campaign_create(owner=other_researcher, name="mine", wnids=[CIRCLE])
    assert refused.value.message == CLAIMED.format("label it in a campaign")


def test_an_older_campaign_over_the_synset_does_not_let_its_owner_change_the_running_one(
    researcher, other_researcher, admin
):
    accepted, voting = make_candidates(CIRCLE, 2)
    Candidate.objects.filter(id=accepted.id).update(state=Candidate.State.ACCEPTED, posterior=0.999)
    older = campaign_create(owner=other_researcher, name="circles 2025", wnids=[CIRCLE])
    campaign_set_state(campaign=older, state="finished")
    running = campaign_set_state(
        campaign=campaign_create(owner=researcher, name="circles", wnids=[CIRCLE]), state="running"
    )
    theirs = api(other_researcher)
    base = f"/api/v1/campaigns/{older.id}"

    override = theirs.post(f"{base}/candidates/{accepted.id}/override/", {"action": "reject"}, format="json")
    gold = theirs.post(f"{base}/candidates/{voting.id}/gold/", {"present": True}, format="json")
    promote = theirs.post(f"{base}/synsets/{CIRCLE}/gold/promote/", {}, format="json")
    images = theirs.post(
        "/api/v1/image-imports/", {"synset": CIRCLE, "urls": ["http://example.com/a.jpg"]}, format="json"
    )

    assert [r.status_code for r in (override, gold, promote, images)] == [403, 403, 403, 403]
    assert override.json()["detail"] == CLAIMED.format("override its decisions")
    assert gold.json()["detail"] == promote.json()["detail"] == CLAIMED.format("set gold answers for it")
    assert images.json()["detail"] == CLAIMED.format("add images to it")
    assert Candidate.objects.get(id=accepted.id).state == Candidate.State.ACCEPTED
    assert not (DecisionOverride.objects.exists() or GoldItem.objects.exists() or ImportBatch.objects.exists())
    # The running campaign's owner, and an admin in any campaign over the synset, may.
    mine = api(researcher).post(
        f"/api/v1/campaigns/{running.id}/candidates/{accepted.id}/override/", {"action": "reject"}, format="json"
    )
    admins = api(admin).post(f"{base}/candidates/{voting.id}/gold/", {"present": True}, format="json")
    assert (mine.status_code, admins.status_code) == (201, 201)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_two_researchers_creating_campaigns_over_one_synset_at_once_do_not_both_claim_it(researcher, other_researcher):
    """The claim is checked, then the campaign's synsets are written: without a lock, the second researcher's
    check could run before the first one's campaign was committed, and both campaigns would claim the synset."""
    plane_figures_import()
    first, second = while_held_open(  # the first request still open when the second one checks
        lambda: campaign_create(owner=researcher, name="circles", wnids=[CIRCLE]),
        lambda: campaign_create(owner=other_researcher, name="mine", wnids=[CIRCLE]),
    )

    assert isinstance(first, Campaign), (first, second)
    assert isinstance(second, Forbidden), (first, second)
    assert list(Campaign.objects.values_list("name", flat=True)) == ["circles"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency is proven on PostgreSQL (CI)")
def test_an_import_checked_while_another_researcher_creates_a_campaign_over_its_synset_is_refused(
    researcher, other_researcher
):
    """The import's claim check, then its batch: without a lock, the check could run while the first researcher's
    campaign over the synset was still uncommitted, and the second researcher's images would enter its queue."""
    plane_figures_import()
    circle = Synset.objects.get(id=int(CIRCLE[1:]))
    campaign, batch = while_held_open(  # the campaign's request still open when the import checks its claim
        lambda: campaign_create(owner=researcher, name="circles", wnids=[CIRCLE]),
        lambda: import_urls_submit(user=other_researcher, synset=circle, urls=["https://example.org/circle.jpg"]),
    )

    assert isinstance(campaign, Campaign), (campaign, batch)
    assert isinstance(batch, Forbidden), (campaign, batch)
    assert batch.message == CLAIMED.format("add images to it")
    assert not ImportBatch.objects.exists()
