from django.contrib import admin

from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, Image, ImportBatch, ImportItem, Vote


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "sha256", "format", "width", "height", "byte_size", "created"]
    search_fields = ["sha256"]
    readonly_fields = [f.name for f in Image._meta.fields]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["id", "synset", "state", "image", "batch", "created"]
    list_filter = ["state"]
    raw_id_fields = ["image", "synset", "batch"]
    list_select_related = ["synset", "image"]


class ImportItemInline(admin.TabularInline):
    model = ImportItem
    fields = ["name", "outcome", "code", "reason", "candidate"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "synset", "source", "status", "accepted", "duplicate", "near_duplicate", "rejected",
                    "created_by", "created"]  # fmt: skip
    list_filter = ["status", "source"]
    raw_id_fields = ["synset", "created_by"]
    list_select_related = ["synset", "created_by"]
    inlines = [ImportItemInline]


class CampaignSynsetInline(admin.TabularInline):
    model = CampaignSynset
    fields = ["synset", "accepted", "rejected", "unresolved", "votes"]
    readonly_fields = ["accepted", "rejected", "unresolved", "votes"]
    raw_id_fields = ["synset"]
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "id", "name", "owner", "state", "images_per_hit", "min_votes", "max_votes", "confidence", "boxes_enabled",
        "created",
    ]  # fmt: skip
    list_filter = ["state", "boxes_enabled"]
    search_fields = ["name"]
    raw_id_fields = ["owner"]
    readonly_fields = ["running_since", "prior_present", "model_version", "votes_at_refit", "refitted"]
    inlines = [CampaignSynsetInline]


@admin.register(GoldItem)
class GoldItemAdmin(admin.ModelAdmin):
    list_display = ["id", "candidate", "present", "created_by", "created"]
    list_filter = ["present"]
    raw_id_fields = ["candidate", "created_by"]


@admin.register(Hit)
class HitAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "synset", "worker", "status", "created", "expires_at", "submitted_at"]
    list_filter = ["status", "campaign"]
    search_fields = ["worker__username"]
    raw_id_fields = ["campaign", "synset", "worker"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["id", "candidate", "worker", "hit", "answer", "response_ms", "is_gold", "created"]
    list_filter = ["answer", "is_gold"]
    raw_id_fields = ["candidate", "worker", "hit"]
    # The vote table is the largest: no COUNT(*) over it for the changelist.
    show_full_result_count = False
