"""Bounding boxes (Su, Deng & Fei-Fei 2012): one worker draws one box, others verify its quality, others
verify coverage; the image goes back for drawing until it is covered. See annotation/services/boxes.md.

Coordinates are whole pixels of the *displayed* image (EXIF orientation applied: ``Image.width`` ×
``Image.height``), ``x1, y1`` inclusive and ``x2, y2`` exclusive, like ``annotation.demo_images`` and
``PIL.Image.crop``: ``0 <= x1 < x2 <= width``. Integers because every format we export (ImageNet/VOC XML,
COCO) stores pixel boxes, a browser click lands on a pixel anyway, and exact equality can then be tested.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class BoxJob(models.Model):
    """One accepted candidate in the box pipeline, with its state machine (services/boxes.md)."""

    class State(models.TextChoices):
        DRAW = "draw"  # waiting for a worker to draw one more box (or say there are no more)
        QUALITY = "quality"  # its newest box is being verified
        COVERAGE = "coverage"  # workers verify that every instance is boxed
        DONE = "done"  # covered: its accepted boxes are final
        NO_OBJECT = "no_object"  # drawers say the object is not there
        UNRESOLVED = "unresolved"  # ran out of rounds; accepted boxes kept, coverage not confirmed
        WITHDRAWN = "withdrawn"  # the candidate is no longer accepted

    candidate = models.OneToOneField("annotation.Candidate", on_delete=models.CASCADE, related_name="box_job")
    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="box_jobs")
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+", db_index=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAW)
    round = models.PositiveSmallIntegerField(default=0, help_text="draw → quality → coverage cycles so far")
    absent_count = models.PositiveSmallIntegerField(default=0, help_text="'object not present' answers")
    draw_pending = models.PositiveSmallIntegerField(default=0)
    # Coverage votes of the current round (reset when a new round starts), kept like Candidate's counters.
    votes_count = models.PositiveSmallIntegerField(default=0)
    yes_count = models.PositiveSmallIntegerField(default=0)
    pending_count = models.PositiveSmallIntegerField(default=0)
    posterior = models.FloatField(null=True, blank=True, help_text="P(every instance is boxed | votes)")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "synset", "state", "id"], name="boxjob_queue")]

    def __str__(self) -> str:
        return f"box job {self.id} ({self.state}, round {self.round})"


class Box(models.Model):
    """A box drawn by a worker (or merged from several, or a gold box with a known verdict)."""

    class State(models.TextChoices):
        DRAWN = "drawn"  # stored, not yet leased for verification
        VERIFYING = "verifying"  # quality votes arriving
        ACCEPTED = "accepted"  # in the dataset
        REJECTED = "rejected"  # not tight, not the synset, or unresolved after the maximum votes
        MERGED = "merged"  # a duplicate of an accepted instance: folded into ``merged_into``

    job = models.ForeignKey(BoxJob, null=True, blank=True, on_delete=models.CASCADE, related_name="boxes")
    candidate = models.ForeignKey("annotation.Candidate", on_delete=models.CASCADE, related_name="boxes")
    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    x1 = models.PositiveIntegerField()
    y1 = models.PositiveIntegerField()
    x2 = models.PositiveIntegerField()
    y2 = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAWN)
    gold = models.BooleanField(null=True, blank=True, help_text="gold box: the known verdict (good/bad)")
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    round = models.PositiveSmallIntegerField(default=0)
    votes_count = models.PositiveSmallIntegerField(default=0)
    yes_count = models.PositiveSmallIntegerField(default=0)
    pending_count = models.PositiveSmallIntegerField(default=0)
    posterior = models.FloatField(null=True, blank=True, help_text="P(tight box around one instance | votes)")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(x2__gt=models.F("x1"), y2__gt=models.F("y1")), name="box_positive"),
        ]
        indexes = [
            models.Index(fields=["candidate", "state"], name="box_candidate_state"),
            models.Index(fields=["state", "id"], condition=Q(state="verifying"), name="box_verifying"),
        ]
        verbose_name_plural = "boxes"

    def __str__(self) -> str:
        return f"box {self.id} ({self.x1},{self.y1},{self.x2},{self.y2}) {self.state}"

    @property
    def coords(self) -> tuple[int, int, int, int]:
        return (self.x1, self.y1, self.x2, self.y2)


class BoxTask(models.Model):
    """A leased batch of box work of one kind and one synset for one worker (like ``Hit``)."""

    class Kind(models.TextChoices):
        DRAW = "draw"
        QUALITY = "quality"
        COVERAGE = "coverage"

    class Status(models.TextChoices):
        OPEN = "open"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="box_tasks")
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="box_tasks")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "campaign", "kind"],
                condition=Q(status="open"),
                name="boxtask_one_open_per_worker_kind",
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], condition=Q(status="open"), name="boxtask_open_expiry")]

    def __str__(self) -> str:
        return f"{self.kind} task {self.id} ({self.status})"


class BoxTaskItem(models.Model):
    """One image (draw, coverage) or one box (quality) leased to one worker in one task. The constraints
    make "never the same box twice" and "never the same image twice in one round" database invariants."""

    task = models.ForeignKey(BoxTask, on_delete=models.CASCADE, related_name="items")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=BoxTask.Kind.choices)
    job = models.ForeignKey(BoxJob, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    box = models.ForeignKey(Box, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    round = models.PositiveSmallIntegerField(default=0)
    position = models.PositiveSmallIntegerField()
    is_gold = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "box"], condition=Q(box__isnull=False), name="boxtaskitem_worker_box"
            ),
            models.UniqueConstraint(
                fields=["worker", "job", "kind", "round"],
                condition=Q(job__isnull=False, box__isnull=True),
                name="boxtaskitem_worker_job_round",
            ),
        ]
        indexes = [models.Index(fields=["task", "position"], name="boxtaskitem_task_position")]

    def __str__(self) -> str:
        return f"{self.kind} item {self.id} of task {self.task_id}"


class BoxAnswer(models.Model):
    """One answer to one task item: narrow and append-only like ``Vote``. For a draw item ``answer`` is
    BOX (the drawn box is the Box row pointing back here), NO_MORE or NOT_PRESENT; for quality and coverage
    it is NO, YES or CANT_TELL."""

    class Answer(models.IntegerChoices):
        NO = 0
        YES = 1
        CANT_TELL = 2
        BOX = 3
        NO_MORE = 4
        NOT_PRESENT = 5

    item = models.OneToOneField(BoxTaskItem, on_delete=models.CASCADE, related_name="answer")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=BoxTask.Kind.choices)
    job = models.ForeignKey(BoxJob, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    box = models.ForeignKey(Box, null=True, blank=True, on_delete=models.CASCADE, related_name="answers")
    round = models.PositiveSmallIntegerField(default=0)
    answer = models.PositiveSmallIntegerField(choices=Answer.choices)
    drawn = models.OneToOneField(Box, null=True, blank=True, on_delete=models.SET_NULL, related_name="draw_answer")
    response_ms = models.PositiveIntegerField()
    is_gold = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["box"], condition=Q(kind="quality", is_gold=False), name="boxanswer_quality"),
            models.Index(fields=["job", "round"], condition=Q(kind="coverage"), name="boxanswer_coverage"),
        ]

    def __str__(self) -> str:
        return f"box answer {self.id}"
