from django.contrib import admin

from annotation.models import Candidate, Image, ImportBatch, ImportItem


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
