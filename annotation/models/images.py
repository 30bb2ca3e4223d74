"""Candidate images: the stored files (Image), their proposal for a synset (Candidate), and the imports
that brought them (ImportBatch with one ImportItem per file).

Candidate is the table the scheduler walks (10^6-10^8 rows), so it stays narrow: ids, a state and a date.
Its provenance (source, query term, who, when) is on its batch and the file name or URL on the import item
that created it.
"""

from django.conf import settings
from django.db import models

from taxonomy.models import Synset


class Image(models.Model):
    """One image file, stored once by content. ``file`` is the original, byte-for-byte; ``thumbnail`` and
    ``medium`` are display versions with the EXIF orientation applied (``medium`` is the original itself
    when that is already a browser format no larger than the medium size). ``width`` and ``height`` are the
    displayed size. Names are content-addressed (``images/ab/cd/<sha256>.jpg``), so they never change and
    may be cached forever."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(max_length=100)
    thumbnail = models.FileField(max_length=100)
    medium = models.FileField(max_length=100)
    format = models.CharField(max_length=4)  # JPEG, PNG, WEBP, GIF, BMP
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.PositiveIntegerField()
    phash = models.BigIntegerField(help_text="imagehash phash, 64 bits as a signed integer")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}x{self.height} {self.format}"

    @property
    def pixels(self) -> int:
        return self.width * self.height


class ImportBatch(models.Model):
    class Source(models.TextChoices):
        FOLDER = "folder"
        ARCHIVE = "archive"
        URL = "url"
        UPLOAD = "upload"
        DEMO = "demo"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    synset = models.ForeignKey(Synset, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices)
    query_term = models.CharField(max_length=200, blank=True)
    origin = models.CharField(max_length=500, blank=True, help_text="the folder, archive or list imported")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    total = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicate = models.PositiveIntegerField(default=0)
    near_duplicate = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    # The job processing an API batch's pending items holds it by a claim (a random token) and touches
    # ``heartbeat`` as it goes; between two tasks the claim is empty. A batch left claimed with an old
    # heartbeat, or unclaimed and untouched, lost its job: the periodic resume queues it again
    # (annotation/services/images.py).
    claim = models.CharField(max_length=32, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"import {self.id} ({self.source}, {self.status})"

    @property
    def processed(self) -> int:
        return self.accepted + self.duplicate + self.near_duplicate + self.rejected


class Candidate(models.Model):
    """One image proposed for one synset; the labelling issues drive ``state``."""

    class State(models.TextChoices):
        NEW = "new"
        VOTING = "voting"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        UNRESOLVED = "unresolved"

    # image: candidate_image_synset_unique leads with it (an index of its own cost an insertion per row version:
    # every lease, submit and consensus update of a candidate writes a new one).
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="candidates", db_index=False)
    synset = models.ForeignKey(Synset, on_delete=models.PROTECT, related_name="+", db_index=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    # Voting counters and the consensus result, kept current by annotation.services.hits / .consensus so that
    # the scheduler reads one narrow row and never counts votes (see services/scheduler.md).
    votes_count = models.PositiveSmallIntegerField(default=0)
    yes_count = models.PositiveSmallIntegerField(default=0)
    pending_count = models.PositiveSmallIntegerField(default=0, help_text="outstanding leases")
    posterior = models.FloatField(null=True, blank=True, help_text="P(present | votes)")
    priority = models.FloatField(default=0.0, help_text="value of one more vote; highest is served first")
    model_version = models.CharField(max_length=24, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "synset"], name="candidate_image_synset_unique")]
        indexes = [
            models.Index(fields=["synset", "state"], name="candidate_synset_state"),
            models.Index(
                fields=["synset", "-priority", "id"],
                condition=models.Q(state__in=["new", "voting"]),
                name="candidate_queue",
            ),
            # Candidates whose votes await their consensus job (a negative priority, see services/hits.py):
            # few at any time, so the consensus sweep finds lost jobs without reading the decided rows.
            models.Index(fields=["synset"], condition=models.Q(priority__lt=0), name="candidate_awaiting"),
        ]

    def __str__(self) -> str:
        return f"candidate {self.id} ({self.state})"


class ImportItem(models.Model):
    """The outcome for one file of a batch: accepted (``candidate`` created), duplicate or near-duplicate
    (``candidate`` is the one it duplicates), rejected with a reason, or still pending."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        DUPLICATE = "duplicate"
        NEAR_DUPLICATE = "near_duplicate"
        REJECTED = "rejected"

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="items")
    name = models.TextField(help_text="file name inside the folder or archive, or the URL")
    outcome = models.CharField(max_length=14, choices=Outcome.choices, default=Outcome.PENDING)
    code = models.CharField(max_length=24, blank=True)
    reason = models.TextField(blank=True)
    candidate = models.ForeignKey(Candidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome}"
