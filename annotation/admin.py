from django.contrib import admin, messages

from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, Image, ImportBatch, ImportItem, Vote
from annotation.services.images import image_delete_unused


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    """Images are read-only here. Deleting one is allowed only while nothing uses it: a candidate's and a dataset
    version's foreign keys protect it (deleting a candidate would take its votes, gold answer and boxes with it,
    and a version's rows record what was published), so Django's confirmation page refuses and lists them. An
    unused image goes through the service that the imports use, which deletes its files after commit, under its
    content's lock (an import bringing the same bytes meanwhile keeps them)."""

    list_display = ["id", "sha256", "format", "width", "height", "byte_size", "created"]
    search_fields = ["sha256"]
    readonly_fields = [f.name for f in Image._meta.fields]

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            self.message_user(
                request,
                "An image that a candidate or a dataset version uses cannot be deleted: it would take the candidates' "
                "votes, gold answers and boxes with it, and the versions record what they published. Only images "
                "nothing uses can be deleted (their files go with them).",
                messages.WARNING,
            )
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj: Image) -> None:
        self._delete(request, [obj.id])

    def delete_queryset(self, request, queryset) -> None:
        self._delete(request, list(queryset.values_list("id", flat=True)))

    def _delete(self, request, ids: list[int]) -> None:
        kept = [image_id for image_id in ids if not image_delete_unused(image_id=image_id)]
        if kept:  # a candidate (an import) took it between the confirmation and this
            listed = ", ".join(map(str, kept))
            self.message_user(request, f"Kept image(s) {listed}: used since the confirmation.", messages.WARNING)


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
