"""Rollups are maintained by hit_submit, in its transaction, and never double-count a replayed submit."""

from decimal import Decimal

from annotation.models import ActivityBucket, ActivityBucketWorker, CampaignWorker, SynsetActivity
from annotation.services import hits, rollups
from tests.dashboard.conftest import CIRCLE


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
    class Item:
        def __init__(self, is_gold):
            self.is_gold = is_gold

    hit = seeded.hits[0]
    parsed = [(Item(True), 1, 300), (Item(True), 0, 300), (Item(False), 1, 400)]
    rollups.hit_recorded(hit=hit, parsed=parsed, gold_correct=1)
    worker = CampaignWorker.objects.get(campaign=seeded.campaign, worker=seeded.worker)
    assert (worker.hits, worker.answers, worker.gold_answered, worker.gold_correct) == (2, 7, 2, 1)
    assert worker.gold_accuracy == 0.5


def test_candidate_figures_are_recounted_per_synset(seeded):
    circle = SynsetActivity.objects.get(campaign=seeded.campaign, synset_id=int(CIRCLE[1:]))
    assert (circle.candidates, circle.open_candidates, circle.gold, circle.accepted_counted) == (4, 1, 0, 2)
    assert round(circle.accepted_posterior_sum, 6) == 1.96
    assert circle.counted_at is not None


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
