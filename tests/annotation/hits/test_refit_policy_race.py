"""A refit reads the campaign's decision policy when it starts and decides every candidate by it. If a researcher
changes the policy meanwhile, the change marks the campaign due for a refit and queues one; the running refit,
when it finished, stored its vote count over that mark, so with the queued refit lost (a broker down) the
old policy's decisions stayed until enough new votes came."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from annotation.models import Campaign, Vote
from annotation.services.refit import campaign_refit, running_campaigns_refit_due
from tests.annotation.hits.conftest import campaign_with_votes
from tests.concurrency import another_connection_waits
from tests.wordnet_snapshot import plane_figures_import

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection holds a table lock: PostgreSQL"),
]


def test_a_policy_changed_while_a_refit_runs_leaves_the_campaign_due(make_campaign):
    plane_figures_import()  # a flushed database
    campaign = campaign_with_votes(make_campaign, confidence=0.95)
    release, outcome = threading.Event(), {}

    def hold_the_votes() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Vote._meta.db_table} IN ACCESS EXCLUSIVE MODE")
                release.wait(20)
        finally:
            connections.close_all()

    def refit() -> None:
        try:
            outcome["refit"] = campaign_refit(campaign_id=campaign.id)
        except BaseException as error:  # reported below
            outcome["refit"] = error
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_votes)
    holder.start()
    time.sleep(0.5)
    refitting = threading.Thread(target=refit)
    refitting.start()
    for _ in range(200):  # the refit has read the campaign and waits for the votes
        if another_connection_waits():
            break
        time.sleep(0.05)
    # What campaign_update_policy writes; its queued refit lost with the broker.
    Campaign.objects.filter(id=campaign.id).update(confidence=0.99, votes_at_refit=0)
    release.set()
    holder.join(30)
    refitting.join(60)

    assert outcome["refit"].votes == 36, outcome
    campaign.refresh_from_db()
    assert campaign.votes_at_refit == 0  # still due: the next periodic refit decides by the new policy
    assert running_campaigns_refit_due(campaign_ids=[campaign.id], every=1) == [campaign.id]
    assert campaign.model_version  # what the fit learned is kept
