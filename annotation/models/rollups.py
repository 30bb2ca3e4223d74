"""Rollups for the researcher dashboard, kept current as work happens (annotation.services.rollups) so that no
dashboard query, page or metric ever scans the vote table; and the records of researchers' and admins'
decisions (overrides of consensus, worker blocks).

Sizes for a campaign of 10^7 votes over a month: ~43,000 minute buckets and 720 hour buckets, one row per
(campaign, synset) and per (campaign, worker). The bucket-worker table only makes "distinct workers in a
bucket" an upsert; the dashboard reads the count stored on the bucket.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models


class ActivityBucket(models.Model):
    """Work done in a campaign in one minute or one hour (``start`` truncated to it)."""

    class Span(models.TextChoices):
        MINUTE = "minute"
        HOUR = "hour"

    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="+")
    span = models.CharField(max_length=6, choices=Span.choices)
    start = models.DateTimeField()
    hits = models.PositiveIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0, help_text="all answers, gold and can't-tell included")
    yes = models.PositiveIntegerField(default=0, help_text="'present' answers on real (non-gold) items")
    no = models.PositiveIntegerField(default=0, help_text="'absent' answers on real (non-gold) items")
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    response_ms = models.PositiveBigIntegerField(default=0)
    workers = models.PositiveIntegerField(default=0, help_text="distinct workers who submitted in the bucket")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "span", "start"], name="activity_bucket_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.span} {self.start:%Y-%m-%d %H:%M}"


class ActivityBucketWorker(models.Model):
    """One worker seen in one bucket; inserting it for the first time increments ``ActivityBucket.workers``."""

    bucket = models.ForeignKey(ActivityBucket, on_delete=models.CASCADE, related_name="+", db_index=False)
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "worker"], name="activity_bucket_worker_unique")]

    def __str__(self) -> str:
        return f"{self.worker_id} in {self.bucket_id}"


class CampaignWorker(models.Model):
    """A worker's totals in one campaign: throughput, gold accuracy, time spent and earnings."""

    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    hits = models.PositiveIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0)
    yes = models.PositiveIntegerField(default=0)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    response_ms = models.PositiveBigIntegerField(default=0)
    earned = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "worker"], name="campaign_worker_unique")]

    def __str__(self) -> str:
        return f"{self.worker_id} in campaign {self.campaign_id}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


class SynsetActivity(models.Model):
    """Per (campaign, synset): work done (kept by hit_submit) and candidate figures (recounted by a periodic
    job from the candidate table: ``candidates``, ``open_candidates``, ``gold``, ``accepted_counted`` and
    ``accepted_posterior_sum``, whose ratio is the estimated precision)."""

    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="+")
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+")
    hits = models.PositiveIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0)
    yes = models.PositiveIntegerField(default=0)
    last_answer_at = models.DateTimeField(null=True, blank=True)
    candidates = models.PositiveIntegerField(default=0)
    open_candidates = models.PositiveIntegerField(default=0, help_text="new or voting, gold items left out")
    gold = models.PositiveIntegerField(default=0)
    accepted_counted = models.PositiveIntegerField(
        default=0, help_text="accepted candidates with a consensus posterior (not a researcher's accept) at the recount"
    )
    accepted_posterior_sum = models.FloatField(default=0.0, help_text="sum of posteriors of accepted candidates")
    counted_at = models.DateTimeField(null=True, blank=True, help_text="when the candidate figures were recounted")

    class Meta:
        verbose_name_plural = "synset activities"
        constraints = [models.UniqueConstraint(fields=["campaign", "synset"], name="synset_activity_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.synset_id}"


class DecisionOverride(models.Model):
    """A researcher re-opened or overrode a consensus decision. The candidate's state changes; this row says
    who did it, when, why, and what consensus had said."""

    class Action(models.TextChoices):
        ACCEPT = "accept"
        REJECT = "reject"
        REOPEN = "reopen"

    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey("annotation.Candidate", on_delete=models.CASCADE, related_name="overrides")
    action = models.CharField(max_length=6, choices=Action.choices)
    previous_state = models.CharField(max_length=10)
    previous_posterior = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["candidate", "-created"], name="override_candidate")]

    def __str__(self) -> str:
        return f"{self.action} candidate {self.candidate_id}"


class AuditJudgement(models.Model):
    """A researcher's own verdict on an accepted candidate that a precision audit drew at random: is the
    synset really in the image? The share judged right is the sampled precision (ImageNet measured 99.7% this
    way), set beside the model's estimate for the same images: the posteriors they had when judged. One per
    candidate (its label is the synset's, whichever campaign asked); a changed verdict replaces it."""

    candidate = models.OneToOneField("annotation.Candidate", on_delete=models.CASCADE, related_name="audit")
    # The candidate's synset, copied (a candidate never changes synset): the progress table and the quality panel
    # group a campaign's verdicts by synset, and through the candidate that join scanned every candidate.
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="+")
    correct = models.BooleanField()
    posterior = models.FloatField(null=True, blank=True)  # consensus P(present) when judged
    judged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    judged = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"candidate {self.candidate_id} judged {'right' if self.correct else 'wrong'}"


class WorkerAction(models.Model):
    """A block or unblock of a worker by a person, with the reason (automatic blocks by the consensus refit
    are on the worker's profile and qualification)."""

    class Action(models.TextChoices):
        BLOCK = "block"
        UNBLOCK = "unblock"

    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(
        "annotation.Campaign", on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        help_text="empty: every campaign",
    )  # fmt: skip
    action = models.CharField(max_length=7, choices=Action.choices)
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.action} {self.worker_id}"
