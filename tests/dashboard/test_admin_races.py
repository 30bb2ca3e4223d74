"""An admin's save in the Django admin while a researcher changes the same campaign: the admin's form was checked
against the campaign as it was read, and the save must not turn the researcher's change into a 500 or half a save."""

import pytest
from django.db import connection

from annotation.models import Campaign
from annotation.services.campaigns import campaign_create, campaign_set_state
from tests.concurrency import another_connection_waits, while_held_open
from tests.dashboard.conftest import CIRCLE, TRIANGLE, campaign_form
from tests.wordnet_snapshot import plane_figures_import

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers at once: PostgreSQL (SQLite runs one)"),
]


def test_a_policy_change_saved_while_the_campaign_is_being_finished_is_refused(client, admin, researcher):
    plane_figures_import()  # a flushed database
    campaign = campaign_create(owner=researcher, name="Shapes", wnids=[CIRCLE], confidence=0.99)
    campaign = campaign_set_state(campaign=campaign, state="running")
    client.force_login(admin)
    url = f"/admin/annotation/campaign/{campaign.id}/change/"
    data = campaign_form(client, campaign, name="Shapes 2", confidence="0.95")  # read while the campaign runs

    finished, response = while_held_open(  # the researcher's finish holds the campaign when the admin saves
        lambda: campaign_set_state(campaign=campaign, state="finished"),
        lambda: client.post(url, data),
        until=another_connection_waits,
    )

    assert isinstance(finished, Campaign), finished
    assert not isinstance(response, BaseException), response  # it was the service's Conflict, a 500
    assert (response.status_code, response.url) == (302, url)
    page = client.get(url).content.decode()
    assert "Nothing was saved. A finished campaign&#x27;s policy cannot change." in page
    campaign.refresh_from_db()
    assert (campaign.state, campaign.name, campaign.confidence) == ("finished", "Shapes", 0.99)  # the rename undone


def test_a_rename_saved_while_the_owner_takes_that_name_is_refused_with_a_sentence(client, admin, researcher):
    plane_figures_import()
    campaign = campaign_create(owner=researcher, name="Circles", wnids=[CIRCLE])
    client.force_login(admin)
    url = f"/admin/annotation/campaign/{campaign.id}/change/"
    data = campaign_form(client, campaign, name="Shapes")  # free when the form is checked

    taken, response = while_held_open(
        lambda: campaign_create(owner=researcher, name="shapes", wnids=[TRIANGLE]),
        lambda: client.post(url, data),
        until=another_connection_waits,
    )

    assert isinstance(taken, Campaign), taken
    assert not isinstance(response, BaseException), response  # it was an IntegrityError, a 500
    assert (response.status_code, response.url) == (302, url)
    assert "Nothing was saved. Its owner has just given another campaign this name." in client.get(url).content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Circles"
