"""A refit reads the campaign's decision policy when it starts and decides every candidate by it. If a researcher
changes the policy meanwhile, the change marks the campaign due for a refit and queues one; the running refit,
when it finished, stored its vote count over that mark, so with the queued refit lost (a broker down) the
old policy's decisions stayed until enough new votes came."""

import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from annotation.models import Campaign, CampaignSynset, Candidate, Hit, Vote
from annotation.services.refit import campaign_refit, running_campaigns_refit_due
from tests.annotation.hits.conftest import SHAPES
from workers.roles import Role
from workers.services import account_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a second connection holds a table lock: PostgreSQL"),
]


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_policy_changed_while_a_refit_runs_leaves_the_campaign_due(make_campaign):
    call_command("import_wordnet", "--root", "plane_figure.n.01", "--no-progress", stdout=None)  # a flushed database
    campaign = make_campaign(wnids=SHAPES[:1], candidates=12, min_votes=3, max_votes=7, confidence=0.95)
    candidates = list(Candidate.objects.order_by("id"))
    for i in range(3):
        worker = account_create(username=f"crowd{i}", password="pw-crowd-123", role=Role.WORKER)
        hit = Hit.objects.create(
            campaign=campaign, synset_id=candidates[0].synset_id, worker=worker, status="submitted",
            expires_at=timezone.now(),
        )  # fmt: skip
        Vote.objects.bulk_create(
            Vote(candidate=c, worker=worker, hit=hit, answer=1, response_ms=900) for c in candidates
        )
    CampaignSynset.objects.filter(campaign=campaign).update(votes=36)  # as the submits count them
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
        if _waiting_on_a_lock():
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
