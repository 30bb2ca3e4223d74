"""The worker home page links to the box pages of campaigns that collect boxes, and only of those."""

import pytest
from django.urls import reverse

from annotation.services.campaigns import campaign_create, campaign_set_state
from tests.annotation.hits.conftest import make_candidates, qualify

pytestmark = pytest.mark.django_db


def test_work_home_links_to_draw_quality_and_coverage_only_for_box_campaigns(client, box_campaign, crowd, researcher):
    make_candidates("n13878306", 2)
    plain = campaign_create(owner=researcher, name="ellipses", wnids=["n13878306"], gold_rate=0.0)
    plain = campaign_set_state(campaign=plain, state="running")
    qualify(crowd[1], plain)
    client.force_login(crowd[1])
    html = client.get(reverse("work-home")).content.decode()
    for url in (
        reverse("box-draw", args=[box_campaign.id]),
        reverse("box-verify", args=[box_campaign.id, "quality"]),
        reverse("box-verify", args=[box_campaign.id, "coverage"]),
    ):
        assert f'href="{url}"' in html
        assert client.get(url).status_code == 200
    assert f'data-boxes="{box_campaign.id}"' in html
    assert f'data-boxes="{plain.id}"' not in html
    assert f"/work/{plain.id}/boxes/" not in html
