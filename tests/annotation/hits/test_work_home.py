"""The worker home page says when a campaign needs no more labels instead of offering a Label button that
leads to an empty page."""

import pytest
from django.urls import reverse

from annotation.models import Candidate
from annotation.services import refit
from tests.annotation.hits.conftest import SHAPES, make_gold, qualify

pytestmark = pytest.mark.django_db


def accept(wnid: str, count: int) -> None:
    ids = Candidate.objects.filter(synset_id=int(wnid[1:])).order_by("id").values_list("id", flat=True)[:count]
    Candidate.objects.filter(id__in=list(ids)).update(state=Candidate.State.ACCEPTED, posterior=0.99)


def campaign_row(html: str, name: str) -> str:
    start = html.index(f"<b>{name}</b>")
    return html[start : html.index("</li>", start)]


def test_label_button_until_every_synset_reaches_its_target_then_complete(client, make_campaign, worker):
    campaign = make_campaign(wnids=SHAPES[:2], candidates=4, target_per_synset=2)
    qualify(worker, campaign)
    client.force_login(worker)
    label_link = f'href="{reverse("label", args=[campaign.id])}"'

    accept(SHAPES[0], 2)  # one synset done, the other still short: work is left
    refit.campaign_counters_recount(campaign=campaign)
    row = campaign_row(client.get(reverse("work-home")).content.decode(), campaign.name)
    assert label_link in row and "complete" not in row

    accept(SHAPES[1], 2)
    refit.campaign_counters_recount(campaign=campaign)
    row = campaign_row(client.get(reverse("work-home")).content.decode(), campaign.name)
    assert label_link not in row
    assert "complete" in row and "every category has its images" in row


def test_a_complete_box_campaign_still_offers_its_box_work(client, make_campaign, worker):
    campaign = make_campaign(wnids=SHAPES[:1], candidates=3, target_per_synset=2, boxes_enabled=True)
    qualify(worker, campaign)
    accept(SHAPES[0], 2)
    refit.campaign_counters_recount(campaign=campaign)
    client.force_login(worker)
    row = campaign_row(client.get(reverse("work-home")).content.decode(), campaign.name)
    assert "labelling complete" in row
    assert f'href="{reverse("label", args=[campaign.id])}"' not in row
    assert f'href="{reverse("box-draw", args=[campaign.id])}"' in row


def test_a_worker_not_yet_qualified_is_not_sent_to_a_quiz_for_a_complete_campaign(client, make_campaign, worker):
    campaign = make_campaign(wnids=SHAPES[:1], candidates=3, target_per_synset=2)
    accept(SHAPES[0], 2)
    refit.campaign_counters_recount(campaign=campaign)
    client.force_login(worker)
    row = campaign_row(client.get(reverse("work-home")).content.decode(), campaign.name)
    assert f'href="{reverse("quiz", args=[campaign.id])}"' not in row and "complete" in row


def test_a_worker_not_yet_qualified_for_a_complete_box_campaign_is_told_the_quiz_is_for_boxes(
    client, make_campaign, worker
):
    campaign = make_campaign(wnids=SHAPES[:1], candidates=3, target_per_synset=2, boxes_enabled=True)
    accept(SHAPES[0], 2)
    make_gold(SHAPES[0], 1)  # the quiz's items
    refit.campaign_counters_recount(campaign=campaign)
    client.force_login(worker)
    row = campaign_row(client.get(reverse("work-home")).content.decode(), campaign.name)
    assert "labelling complete" in row and "to draw and check boxes" in row
    assert f'href="{reverse("quiz", args=[campaign.id])}"' in row
