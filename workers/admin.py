from django.contrib import admin

from workers.models import LedgerEntry, Qualification, WorkerProfile


@admin.register(WorkerProfile)
class WorkerProfileAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "external_id",
        "hits_done",
        "answers",
        "gold_answered",
        "gold_correct",
        "reliability",
        "blocked",
    ]
    list_filter = ["blocked"]
    search_fields = ["user__username", "external_id"]
    raw_id_fields = ["user"]


@admin.register(Qualification)
class QualificationAdmin(admin.ModelAdmin):
    list_display = ["worker", "campaign", "status", "attempts", "best_score", "retry_after"]
    list_filter = ["status", "campaign"]
    search_fields = ["worker__username"]
    raw_id_fields = ["worker"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["worker", "kind", "amount", "hit", "paid", "created"]
    list_filter = ["kind", "paid"]
    search_fields = ["worker__username"]
    raw_id_fields = ["worker", "hit"]
