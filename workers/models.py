from django.conf import settings
from django.db import models
from django.db.models import Q


class WorkerProfile(models.Model):
    """A crowd worker's running figures, kept up to date by the services that record their work, so that
    no page has to scan the vote table."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="worker_profile")
    external_id = models.CharField(
        max_length=128, null=True, blank=True, unique=True, help_text="Worker id on an external crowd marketplace."
    )
    hits_done = models.PositiveIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    answer_ms_total = models.PositiveBigIntegerField(default=0)
    agreement = models.FloatField(null=True, blank=True, help_text="Share of answers agreeing with consensus.")
    reliability = models.FloatField(null=True, blank=True, help_text="Estimated accuracy from the consensus model.")
    # The binary confusion the last refit estimated: P(says present | present), P(says absent | absent).
    sensitivity = models.FloatField(null=True, blank=True)
    specificity = models.FloatField(null=True, blank=True)
    blocked = models.BooleanField(default=False)
    blocked_reason = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"worker {self.user_id}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


class Qualification(models.Model):
    """Whether a worker may label in a campaign: trial until they pass the quiz, qualified after, blocked
    when the consensus model finds them unreliable (a researcher can unblock)."""

    class Status(models.TextChoices):
        TRIAL = "trial"
        QUALIFIED = "qualified"
        BLOCKED = "blocked"

    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications")
    # A lazy reference: workers imports no code of the annotation app, it only points at its table.
    campaign = models.ForeignKey("annotation.Campaign", on_delete=models.CASCADE, related_name="qualifications")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRIAL)
    # Why this campaign blocked the worker (the spam screen's or a person's words); empty unless blocked.
    blocked_reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    best_score = models.FloatField(null=True, blank=True)
    retry_after = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["worker", "campaign"], name="qualification_unique")]

    def __str__(self) -> str:
        return f"{self.worker_id} in campaign {self.campaign_id}: {self.status}"


class LedgerEntry(models.Model):
    """Earnings: one entry per approved HIT, plus the bonuses and corrections an admin adds with a note
    (``annotation.services.manage.ledger_adjust``). Amounts in the campaign's currency, to the cent."""

    class Kind(models.TextChoices):
        HIT = "hit"
        BONUS = "bonus"
        CORRECTION = "correction"

    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ledger")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    hit = models.ForeignKey("annotation.Hit", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    paid = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    # The admin who added a bonus or a correction (``ledger_adjust``); null on the entries HITs earn.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["hit"], condition=Q(kind="hit"), name="ledger_one_entry_per_hit"),
        ]

    def __str__(self) -> str:
        return f"{self.worker_id} {self.kind} {self.amount}"
