from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.admin import RecordAdmin
from export.models import DatasetVersion


@admin.register(DatasetVersion)
class DatasetVersionAdmin(RecordAdmin):
    """Read-only and never deleted: a version is the immutable record of what was exported (its snapshot rows and
    its files, which a deletion here would orphan). Versions are created through the API or ``manage.py
    export_dataset``; a change means a new version."""

    list_display = ["id", "name", "version", "status", "progress", "images", "labels", "created_by", "created",
                    "finished", "download"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["name", "notes"]
    list_select_related = ["created_by"]
    readonly_fields = [f.name for f in DatasetVersion._meta.fields] + ["campaigns", "download"]

    @admin.display(description="download")
    def download(self, obj: DatasetVersion) -> str:
        if obj.status != DatasetVersion.Status.DONE:
            return "–"
        return format_html('<a href="{}">{}.tar</a>', reverse("dataset-download", args=[obj.id]), obj.output_dir)
