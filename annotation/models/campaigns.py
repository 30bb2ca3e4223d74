"""Campaigns, HITs and votes: the crowd side of annotation."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Trim


class Campaign(models.Model):
    """A label set (synsets) with its labelling policy."""

    class State(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        FINISHED = "finished"

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    synsets = models.ManyToManyField("taxonomy.Synset", through="CampaignSynset", related_name="campaigns")
    allow_sensitive = models.BooleanField(default=False, help_text="Explicit opt-in to label people categories.")
    images_per_hit = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    target_per_synset = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(1), MaxValueValidator(10_000_000)]
    )
    min_votes = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1), MaxValueValidator(100)])
    max_votes = models.PositiveSmallIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(100)])
    confidence = models.FloatField(default=0.99, validators=[MinValueValidator(0.5), MaxValueValidator(0.9999)])
    gold_rate = models.FloatField(default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)])
    # At most a day: a lease is how long a worker may hold a HIT; past-the-range values overflowed the expiry date.
    lease_seconds = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(30), MaxValueValidator(86_400)]
    )
    # Up to 100 a HIT: "1e5" was taken as 100000.00 (QA); a larger reward is a typo, not a policy.
    reward_per_hit = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("0.10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    quiz_size = models.PositiveSmallIntegerField(default=8, validators=[MinValueValidator(1), MaxValueValidator(100)])
    quiz_pass_mark = models.FloatField(default=0.75, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    quiz_retry_seconds = models.PositiveIntegerField(default=600, validators=[MaxValueValidator(30 * 86_400)])
    # One quiz for the whole campaign (default), or one per synset: a worker then labels only the synsets whose
    # quiz they passed, and takes the next synset's quiz when those run out (annotation/services/quiz.py).
    quiz_per_synset = models.BooleanField(
        default=False, help_text="A quiz per synset: workers label only the synsets whose quiz they passed."
    )
    # The least accuracy (sensitivity and specificity each) on reference items a worker must show to keep
    # working here, tested sequentially after every HIT (annotation/services/screening.py); 0 turns it off.
    min_worker_accuracy = models.FloatField(
        default=0.65,
        validators=[
            MinValueValidator(0.0, message="The least worker accuracy is a share from 0 (no bar) to 0.95."),
            MaxValueValidator(0.95, message="The least worker accuracy is a share from 0 (no bar) to 0.95."),
        ],
        help_text="Least accuracy on reference items to keep working (0 = no bar); screened after every HIT.",
    )
    created = models.DateTimeField(auto_now_add=True)
    running_since = models.DateTimeField(
        null=True, blank=True, help_text="When the campaign last started or resumed running."
    )
    boxes_enabled = models.BooleanField(default=False, help_text="Accepted candidates enter the box pipeline.")
    # Consensus model state, written by the refit job (annotation.services.consensus.campaign_refit).
    prior_present = models.FloatField(default=0.5, help_text="share of candidates that show their synset")
    model_version = models.CharField(max_length=40, blank=True)
    votes_at_refit = models.PositiveBigIntegerField(default=0)
    refitted = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(min_votes__lte=models.F("max_votes")),
                name="campaign_votes_range",
                violation_error_message="min_votes cannot be more than max_votes.",
            ),
            models.CheckConstraint(
                condition=Q(images_per_hit__gte=1, images_per_hit__lte=100), name="campaign_images_per_hit"
            ),
            # Pages, the dashboard and exports show campaigns by name: one researcher's two campaigns named alike
            # could not be told apart. The service refuses a duplicate with a sentence naming the campaign
            # (campaign_create); this holds when two creates race, and for renames in the admin.
            models.UniqueConstraint(
                Lower(Trim("name")),
                "owner",
                name="campaign_owner_name_unique",
                violation_error_message="Its owner already has a campaign of this name (case and surrounding spaces "
                "aside); choose another.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignSynset(models.Model):
    """One synset of a campaign, with counters the services keep current (the scheduler picks the synset
    furthest behind its target; dashboards read these instead of scanning votes)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="campaign_synsets")
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+")
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    unresolved = models.PositiveIntegerField(default=0)
    votes = models.PositiveBigIntegerField(default=0)
    # Written by each refit (annotation/services/refit.py): the shares of kinds of image in this synset —
    # typical ones and look-alikes that fool most workers at once — per class, on the grid of logit shifts
    # of annotation/consensus/item_effect.py: {"shifts": [...], "absent": [...], "present": [...]}.
    # Null until the first refit (plain Dawid–Skene posteriors).
    item_kinds = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "synset"], name="campaign_synset_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.synset_id}"


class GoldItem(models.Model):
    """A candidate with a known answer, mixed into HITs to measure workers. Never voted on for real."""

    candidate = models.OneToOneField("annotation.Candidate", on_delete=models.CASCADE, related_name="gold")
    # The candidate's synset, copied: the scheduler draws a HIT's gold items by synset (index below) instead of
    # walking every candidate of the synset to find the few that are gold (~3 ms per HIT at 1,000 per synset).
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+", db_index=False)
    present = models.BooleanField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["synset", "candidate"], name="golditem_synset_candidate")]

    def __str__(self) -> str:
        return f"gold {self.candidate_id}={'present' if self.present else 'absent'}"


class Hit(models.Model):
    """A leased batch of candidates of one synset for one worker."""

    class Status(models.TextChoices):
        OPEN = "open"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="hits")
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hits")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True)
    # The submission's figures, written by the same UPDATE that marks the HIT submitted. The dashboard
    # rollups add them later, off the submit transaction (annotation/services/rollups.py): ``rollup_pending``
    # until then.
    answers = models.PositiveSmallIntegerField(default=0)
    yes = models.PositiveSmallIntegerField(default=0, help_text="'present' answers on real (non-gold) items")
    no = models.PositiveSmallIntegerField(default=0, help_text="'absent' answers on real (non-gold) items")
    gold_answered = models.PositiveSmallIntegerField(default=0)
    gold_correct = models.PositiveSmallIntegerField(default=0)
    response_ms = models.PositiveIntegerField(default=0)
    rollup_pending = models.BooleanField(default=False)
    # Submitted, and its votes not yet weighed by a consensus drain (annotation/services/consensus_queue.py).
    consensus_pending = models.BooleanField(default=False)

    class Meta:
        verbose_name = "HIT"
        verbose_name_plural = "HITs"
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "campaign"], condition=Q(status="open"), name="hit_one_open_per_worker_campaign"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="open"), name="hit_open_expiry"),
            models.Index(fields=["id"], condition=Q(rollup_pending=True), name="hit_rollup_pending"),
            models.Index(fields=["id"], condition=Q(consensus_pending=True), name="hit_consensus_pending"),
        ]

    def __str__(self) -> str:
        return f"HIT {self.id} ({self.status})"


class HitItem(models.Model):
    """One candidate leased to one worker in one HIT. The (worker, candidate) constraint is what makes
    "a worker never receives the same candidate twice" hold under any concurrency."""

    # No index of their own for hit and worker: hititem_hit_position and hititem_worker_candidate lead with them
    # (each index costs an insertion per item, 24 per HIT).
    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="items", db_index=False)
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    candidate = models.ForeignKey("annotation.Candidate", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()
    is_gold = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "candidate"], name="hititem_worker_candidate")]
        indexes = [models.Index(fields=["hit", "position"], name="hititem_hit_position")]

    def __str__(self) -> str:
        return f"item {self.id} of HIT {self.hit_id}"


class Vote(models.Model):
    """One answer. Append-only and narrow: ids, a small answer and the response time. Gold answers are
    stored too (for worker accuracy) but flagged, and consensus never reads them."""

    class Answer(models.IntegerChoices):
        ABSENT = 0
        PRESENT = 1
        CANT_TELL = 2

    candidate = models.ForeignKey("annotation.Candidate", on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="votes")
    answer = models.PositiveSmallIntegerField(choices=Answer.choices)
    response_ms = models.PositiveIntegerField()
    is_gold = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["candidate"], condition=Q(is_gold=False), name="vote_candidate_real"),
            models.Index(fields=["worker", "id"], name="vote_worker"),  # also the worker's own index
        ]

    def __str__(self) -> str:
        return f"vote {self.id}"


class QuizAttempt(models.Model):
    """A qualification quiz: a few gold items, answered in one go."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The synset this quiz qualifies for, in a campaign with a quiz per synset (None: the whole campaign).
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    items = models.JSONField(help_text="Gold item ids in the order shown.")
    created = models.DateTimeField(auto_now_add=True)
    score = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(null=True)

    def __str__(self) -> str:
        return f"quiz {self.id}"
