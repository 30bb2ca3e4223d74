"""The Django admin's campaign page: what the services maintain is shown, not editable."""

import pytest

from annotation.services.campaigns import campaign_create, campaign_set_state

pytestmark = pytest.mark.django_db

CIRCLE = "n13873502"


def test_the_admin_shows_but_does_not_edit_what_the_services_maintain(client, admin, researcher):
    campaign = campaign_set_state(campaign=campaign_create(owner=researcher, name="c", wnids=[CIRCLE]), state="running")
    client.force_login(admin)
    html = client.get(f"/admin/annotation/campaign/{campaign.id}/change/").content.decode()
    assert 'name="target_per_synset"' in html  # the policy is editable
    for field in ("running_since", "prior_present", "model_version", "votes_at_refit", "refitted"):
        assert f'name="{field}' not in html, field  # shown read-only, no form input
    assert "Running since" in html
