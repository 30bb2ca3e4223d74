"""Dataset versions: an immutable snapshot of accepted labels and boxes (DatasetImage + DatasetLabel +
DatasetBox rows, frozen when the build job starts) and the files written from it. See export/README.md for
the layout of a version."""

from django.conf import settings
from django.db import models


class DatasetVersion(models.Model):
    """One published version. Created by ``export.services.dataset_version_create``; never updated after it
    is done — a change means a new version. ``options`` holds the normalised options (every default filled
    in), so the version can be rebuilt byte for byte from its snapshot."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    notes = models.TextField(blank=True)
    campaigns = models.ManyToManyField("annotation.Campaign", related_name="dataset_versions")
    options = models.JSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    phase = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    heartbeat = models.DateTimeField(null=True, blank=True, help_text="last progress write of the build job")
    finished = models.DateTimeField(null=True, blank=True)
    # The snapshot: when it was taken and the high-water marks that freeze the append-only tables it reads
    # (votes and ledger entries with larger ids arrived later and are not part of this version).
    snapshot_at = models.DateTimeField(null=True, blank=True)
    vote_high_water = models.BigIntegerField(default=0)
    ledger_high_water = models.BigIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    labels = models.PositiveIntegerField(default=0)
    boxes = models.PositiveIntegerField(default=0)
    output_dir = models.CharField(max_length=64, blank=True, help_text="folder under EXPORT_ROOT")
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    total_bytes = models.PositiveBigIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)
    # Figures the datasheet prints that no snapshot row holds, frozen with the snapshot so that a rebuild
    # (``export_dataset --verify``) reads nothing live: the synsets chosen (every one is a class, with or
    # without images), the campaigns' names, the gold items in those synsets, the direct labels whose box job
    # ended ``no_object``, the version whose splits were carried over. Empty for versions snapshotted before
    # 2026-12-04 (the datasheet then reads as it did). See export/README.md.
    frozen = models.JSONField(default=dict, blank=True)
    # The exporter format that wrote the files (export.services.EXPORTER_FORMAT when the build finished), so
    # that a rebuild by later code that writes other bytes (``export_dataset --verify``) can say so rather than
    # only "differs". Null: built before formats were numbered (2026-12), or not built.
    exporter_format = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="dataset_version_unique")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class DatasetImage(models.Model):
    """One image of a version: its split and its primary synset (the class folder of the ImageNet layout;
    the direct label with the highest posterior). ``shuffle`` is a seeded hash that orders images inside a
    split (validation numbering, WebDataset sample order)."""

    class Split(models.IntegerChoices):
        TRAIN = 0
        VAL = 1
        TEST = 2

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    image = models.ForeignKey("annotation.Image", on_delete=models.PROTECT, related_name="+")
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+", db_index=False)
    split = models.PositiveSmallIntegerField(choices=Split.choices, default=Split.TRAIN)
    shuffle = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "image"], name="dataset_image_unique")]
        indexes = [
            models.Index(fields=["version", "split", "synset", "image"], name="dataset_image_class_order"),
            models.Index(fields=["version", "split", "shuffle", "image"], name="dataset_image_shuffle_order"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.image_id}"


class DatasetLabel(models.Model):
    """One label of an image in a version, frozen: the candidate behind it, its posterior and the consensus
    model version that produced it (``"override"`` when a researcher's accept override stands: ``source``).
    ``direct`` is false for an ancestor added by ``include_ancestors`` (no candidate; its posterior is the
    largest of the direct labels that imply it)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    image = models.ForeignKey("annotation.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+", db_index=False)
    candidate_id = models.BigIntegerField(null=True, blank=True)
    posterior = models.FloatField(null=True, blank=True)
    model_version = models.CharField(max_length=40, blank=True)
    direct = models.BooleanField(default=True)

    class Source(models.IntegerChoices):
        CONSENSUS = 0  # the consensus model accepted it (and implied ancestors)
        OVERRIDE = 1  # a researcher accepted it (DecisionOverride); consensus had not said absent
        OVERRIDE_AGAINST = 2  # a researcher accepted it although consensus had said absent

    source = models.PositiveSmallIntegerField(choices=Source.choices, default=Source.CONSENSUS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "image", "synset"], name="dataset_label_unique"),
        ]
        indexes = [models.Index(fields=["version", "synset"], name="dataset_label_synset")]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.image_id}:{self.synset_id}"


class DatasetBox(models.Model):
    """One bounding box of a version, frozen: a final box of the box pipeline (``annotation.Box`` accepted,
    its job done or out of rounds) on one of the version's direct labels. Whole pixels of the displayed
    image, ``x1, y1`` inclusive and ``x2, y2`` exclusive. ``covered`` is false when the job ran out of
    rounds (``unresolved``): its boxes are right but the image may hold more instances."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    image = models.ForeignKey("annotation.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    synset = models.ForeignKey("taxonomy.Synset", on_delete=models.PROTECT, related_name="+", db_index=False)
    candidate_id = models.BigIntegerField()
    box_id = models.BigIntegerField(help_text="the annotation.Box it was frozen from")
    x1 = models.PositiveIntegerField()
    y1 = models.PositiveIntegerField()
    x2 = models.PositiveIntegerField()
    y2 = models.PositiveIntegerField()
    posterior = models.FloatField(null=True, blank=True, help_text="P(tight box | quality votes)")
    covered = models.BooleanField(default=True, help_text="coverage confirmed: every instance is boxed")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "box_id"], name="dataset_box_unique")]
        indexes = [models.Index(fields=["version", "image", "synset", "box_id"], name="dataset_box_image")]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.image_id}:{self.box_id}"
