from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from config.admin import LargeTableAdmin, RecordAdmin
from workers.models import LedgerEntry, Qualification

# WorkerProfile is registered in annotation/admin.py: its block and unblock actions are the annotation app's services
# (its consensus drops a blocked worker's votes), and this app imports nothing of ours.


@admin.register(Qualification)
class QualificationAdmin(RecordAdmin):
    """Read-only. The quiz (annotation/services/quiz.py) qualifies a worker, the spam screen and ``worker_block``
    block one (with the reason and a WorkerAction record); a status set by hand would skip the quiz or lift a
    block without a trace, and deleting one would reset the worker's quiz and erase a block."""

    list_display = ["worker", "campaign", "status", "attempts", "best_score", "retry_after"]
    list_filter = ["status", "campaign"]
    search_fields = ["worker__username"]
    list_select_related = ["worker", "campaign"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LargeTableAdmin):
    """Read-only: the earnings ledger is what workers were owed and paid (one entry per approved HIT). Bonuses
    and corrections are added with a note on the workers page (/manage/workers/, ``ledger_adjust``): an entry is
    never edited, a wrong one is put right by a correction. Payments are approved through ``payments_approve``
    there too, up to the entry the payouts CSV listed. One entry per HIT makes it a large table: its list is never
    counted."""

    list_display = ["worker", "kind", "amount", "note", "hit", "paid", "created_by", "created"]
    list_filter = ["kind", "paid"]
    search_fields = ["worker__username"]
    list_select_related = ["worker", "created_by"]


# Rows that name a user as who did something. Deleting the user would delete them (their work: votes go with their
# HITs) or blank out who did it (overrides, blocks, gold answers, imports, exports): the audit trail.
USER_RECORDS = [
    ("annotation", "Hit", "worker"), ("annotation", "BoxTask", "worker"), ("annotation", "QuizAttempt", "worker"),
    ("annotation", "Campaign", "owner"), ("annotation", "DecisionOverride", "created_by"),
    ("annotation", "WorkerAction", "worker"), ("annotation", "WorkerAction", "created_by"),
    ("annotation", "GoldItem", "created_by"), ("annotation", "ImportBatch", "created_by"),
    ("export", "DatasetVersion", "created_by"), ("workers", "LedgerEntry", "worker"),
    ("workers", "Qualification", "worker"),
]  # fmt: skip


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    """Django's user admin, except that an account that has done anything (HITs and their votes, pay, quizzes,
    campaigns, overrides, blocks, gold answers, imports, exports) cannot be deleted: its work and the record of who
    did what would go with it. Such an account is deactivated instead (untick "Active")."""

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is None or not super().has_delete_permission(request, obj):
            return super().has_delete_permission(request, obj)
        # The delete link is not offered for such an account and a POST to its delete page is refused (403).
        return not any(
            apps.get_model(app, model).objects.filter(**{field: obj}).exists() for app, model, field in USER_RECORDS
        )
