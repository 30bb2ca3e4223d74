"""Rollups get every submitted HIT exactly once: at once with eager Celery (in the submit's transaction), or
through the flush task after commit with a broker; a replayed submit never double-counts."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from annotation import dashboard_tasks
from annotation.models import ActivityBucket, ActivityBucketWorker, CampaignWorker, Candidate, Hit, SynsetActivity
from annotation.services import hits, rollups
from annotation.services.campaigns import campaign_create, campaign_set_state
from tests.annotation.hits.conftest import make_candidates, qualify
from tests.dashboard.conftest import CIRCLE, TRIANGLE, submit


def test_hit_submit_adds_each_hit_to_minute_and_hour_buckets(seeded):
    minute = ActivityBucket.objects.get(campaign=seeded.campaign, span="minute")
    hour = ActivityBucket.objects.get(campaign=seeded.campaign, span="hour")
    assert minute.start == seeded.now.replace(second=0)
    assert hour.start == seeded.now.replace(minute=0, second=0)
    for bucket in (minute, hour):
        assert (bucket.hits, bucket.answers, bucket.yes, bucket.no, bucket.workers) == (2, 8, 6, 1, 2)
        assert (bucket.gold_answered, bucket.gold_correct, bucket.response_ms) == (0, 0, 6000)
    assert ActivityBucketWorker.objects.filter(bucket__campaign=seeded.campaign).count() == 4


def test_hit_submit_keeps_worker_and_synset_totals(seeded):
    mine = CampaignWorker.objects.get(campaign=seeded.campaign, worker=seeded.worker)
    other = CampaignWorker.objects.get(campaign=seeded.campaign, worker=seeded.other_worker)
    assert (mine.hits, mine.answers, mine.yes, mine.response_ms, mine.earned) == (1, 4, 4, 4000, Decimal("0.10"))
    assert (other.hits, other.answers, other.yes, other.response_ms, other.earned) == (1, 4, 2, 2000, Decimal("0.10"))
    activity = SynsetActivity.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:]))
    assert (activity.hits, activity.answers, activity.yes, activity.last_answer_at) == (2, 8, 6, seeded.now)


def test_replayed_submit_changes_no_rollup(seeded):
    first = seeded.hits[0]
    answers = [{"item": i.id, "answer": "present", "ms": 1000} for i in first.items.order_by("candidate_id")]
    result = hits.hit_submit(
        worker=seeded.worker, hit_id=first.id, answers=answers, idempotency_key="seed-key-worker-1"
    )
    assert result.replayed
    assert ActivityBucket.objects.get(campaign=seeded.campaign, span="minute").answers == 8
    assert CampaignWorker.objects.get(campaign=seeded.campaign, worker=seeded.worker).hits == 1


def test_gold_answers_are_counted_with_their_correctness(seeded):
    hit = Hit.objects.select_related("campaign").get(id=seeded.hits[0].id)
    row = {**rollups.hit_row(hit), "answers": 3, "yes": 1, "no": 0, "gold_answered": 2, "gold_correct": 1}
    rollups.hits_add([row])
    worker = CampaignWorker.objects.get(campaign=seeded.campaign, worker=seeded.worker)
    assert (worker.hits, worker.answers, worker.gold_answered, worker.gold_correct) == (2, 7, 2, 1)
    assert worker.gold_accuracy == 0.5
    bucket = ActivityBucket.objects.get(campaign=seeded.campaign, span="minute")
    assert (bucket.hits, bucket.workers, bucket.gold_answered, bucket.gold_correct) == (3, 2, 2, 1)


def test_deferred_submits_reach_the_rollups_once_through_the_flush(
    researcher, worker, other_worker, monkeypatch, django_capture_on_commit_callbacks
):
    """With a broker the submit only marks its HIT; the flush task adds it, by its submission time, once."""
    campaign = campaign_create(
        owner=researcher, name="deferred", wnids=[CIRCLE], target_per_synset=10, images_per_hit=3,
        gold_rate=0.0, min_votes=2, max_votes=3,
    )  # fmt: skip
    campaign = campaign_set_state(campaign=campaign, state="running")
    make_candidates(CIRCLE, 3)
    qualify(worker, campaign)
    qualify(other_worker, campaign)
    now = timezone.now().replace(second=30, microsecond=0) - timedelta(minutes=3)
    monkeypatch.setattr(rollups, "deferred", lambda: True)
    monkeypatch.setattr(rollups.timezone, "now", lambda: now)
    with django_capture_on_commit_callbacks() as callbacks:  # not run: there is no broker in the tests
        first = submit(worker, campaign, ["present", "absent", "present"], 700, "deferred-key-1")
        submit(other_worker, campaign, ["present", "cant_tell", "absent"], 300, "deferred-key-2")
    monkeypatch.undo()
    assert rollups.flush_request in callbacks
    assert not ActivityBucket.objects.filter(campaign=campaign).exists()
    assert not CampaignWorker.objects.filter(campaign=campaign).exists()
    assert Hit.objects.filter(campaign=campaign, rollup_pending=True).count() == 2

    assert dashboard_tasks.rollups_flush.delay().get() == 2
    assert rollups.rollups_flush() == 0  # each HIT is added once, however many flushes run
    items = list(first.items.order_by("candidate_id"))
    sent = ["present", "absent", "present"]
    same = [{"item": i.id, "answer": a, "ms": 700} for i, a in zip(items, sent, strict=True)]
    hits.hit_submit(worker=worker, hit_id=first.id, answers=same, idempotency_key="deferred-key-1")  # a replay
    assert rollups.rollups_flush() == 0

    assert not Hit.objects.filter(campaign=campaign, rollup_pending=True).exists()
    for span, start in (("minute", now.replace(second=0)), ("hour", now.replace(minute=0, second=0))):
        bucket = ActivityBucket.objects.get(campaign=campaign, span=span)
        assert bucket.start == start  # the HITs' submission time, not the flush's
        assert (bucket.hits, bucket.answers, bucket.yes, bucket.no, bucket.workers) == (2, 6, 3, 2, 2)
        assert bucket.response_ms == 3 * 700 + 3 * 300
    mine = CampaignWorker.objects.get(campaign=campaign, worker=worker)
    assert (mine.hits, mine.answers, mine.yes, mine.response_ms, mine.earned) == (1, 3, 2, 2100, Decimal("0.10"))
    assert mine.first_seen == mine.last_seen == now
    activity = SynsetActivity.objects.get(campaign=campaign, synset_id=int(CIRCLE[1:]))
    assert (activity.hits, activity.answers, activity.yes, activity.last_answer_at) == (2, 6, 3, now)


def test_candidate_figures_are_recounted_per_synset(seeded):
    circle = SynsetActivity.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:]))
    assert (circle.candidates, circle.open_candidates, circle.gold, circle.accepted_counted) == (4, 1, 0, 2)
    assert round(circle.accepted_posterior_sum, 6) == 1.96
    assert circle.counted_at is not None


def test_a_researchers_accept_and_gold_items_stay_out_of_precision_and_open_work(seeded):
    # QA: circle showed precision 0.67 with a third of its labels accepted by a researcher (no posterior, counted
    # as 0), and "open 6" where every open candidate was a gold item, which never takes votes.
    from annotation.services.manage import candidate_override, gold_from_candidate

    voting = seeded.candidates[3]
    gold_from_candidate(campaign=seeded.campaign, candidate_id=voting.id, present=True)
    rejected = seeded.candidates[2]
    candidate_override(campaign=seeded.campaign, candidate_id=rejected.id, action="accept")
    Candidate.objects.filter(id=rejected.id).update(posterior=None)  # as an accept with no votes behind it
    rollups.synset_activity_recount(campaign_id=seeded.campaign.id)
    circle = SynsetActivity.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:]))
    assert (circle.candidates, circle.open_candidates, circle.gold, circle.accepted_counted) == (4, 0, 1, 2)
    assert round(circle.accepted_posterior_sum / circle.accepted_counted, 4) == 0.98


def test_progress_request_recounts_in_the_background_once_when_due(
    seeded, django_capture_on_commit_callbacks, settings
):
    settings.DASHBOARD_RECOUNT_SECONDS = 60
    assert not rollups.recount_request(campaign=seeded.campaign)  # just recounted by the fixture
    SynsetActivity.objects.filter(campaign=seeded.campaign).update(counted_at=None, candidates=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert rollups.recount_request(campaign=seeded.campaign)
        assert not rollups.recount_request(campaign=seeded.campaign)  # throttled
    assert SynsetActivity.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:])).candidates == 4


def test_a_quality_request_first_also_asks_for_the_recount(seeded, researcher, django_capture_on_commit_callbacks):
    # The dashboard asks for its panels at once: quality may come before progress, and its estimated precision
    # is read from the recounted figures (it showed "–" on a first load).
    from rest_framework.test import APIClient

    SynsetActivity.objects.filter(campaign=seeded.campaign).update(
        counted_at=None, accepted_counted=0, accepted_posterior_sum=0
    )
    client = APIClient()
    client.force_authenticate(researcher)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        client.get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/quality/")
    assert len(queued) == 1
    precision = client.get(f"/api/v1/campaigns/{seeded.campaign.id}/dashboard/quality/").json()["precision"]
    assert precision is not None and precision > 0.9


def test_a_new_campaign_counts_the_candidates_its_synsets_already_hold(researcher, django_capture_on_commit_callbacks):
    make_candidates(CIRCLE, 5)  # imported before, e.g. for an earlier campaign
    with django_capture_on_commit_callbacks(execute=True):
        campaign = campaign_create(owner=researcher, name="second look", wnids=[CIRCLE, TRIANGLE])
    counted = dict(SynsetActivity.objects.filter(campaign=campaign).values_list("synset_id", "candidates"))
    assert counted == {int(CIRCLE[1:]): 5, int(TRIANGLE[1:]): 0}  # not zero until the first dashboard poll


def test_a_finished_import_recounts_its_synset_in_every_campaign_still_open(
    researcher, django_capture_on_commit_callbacks
):
    from annotation.services import images
    from taxonomy.models import Synset

    with django_capture_on_commit_callbacks(execute=True):
        running = campaign_create(owner=researcher, name="running", wnids=[CIRCLE, TRIANGLE])
        finished = campaign_create(owner=researcher, name="finished", wnids=[CIRCLE])
    campaign_set_state(campaign=finished, state="finished")
    SynsetActivity.objects.filter(campaign=running, synset_id=int(TRIANGLE[1:])).update(candidates=7)  # a marker
    batch = images.import_batch_create(synset=Synset.objects.get(id=int(CIRCLE[1:])), source="upload")
    make_candidates(CIRCLE, 3)  # what the import added

    with django_capture_on_commit_callbacks(execute=True) as queued:
        images.import_batch_finish(batch=batch)

    assert len(queued) == 1  # the running campaign only: a finished one's figures no longer move
    assert SynsetActivity.objects.get(campaign=running, synset_id=int(CIRCLE[1:])).candidates == 3
    assert SynsetActivity.objects.get(campaign=finished, synset_id=int(CIRCLE[1:])).candidates == 0
    # Only the imported synset is recounted, not the whole campaign.
    assert SynsetActivity.objects.get(campaign=running, synset_id=int(TRIANGLE[1:])).candidates == 7
