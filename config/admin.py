"""What the apps' ModelAdmins share: a read-only admin for the rows that are records, and a paginator that never
counts a large table."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP + 1`` rows (``SELECT COUNT(*) FROM (... LIMIT CAP + 1)``): the changelist's count of
    the vote table (10^9 rows in a large campaign) scanned all of it on every page view, filter or not. Past the
    cap the list says "10,001" and pages up to there; a filter or a search narrows it."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()


class RecordAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted here: the row records what happened (a vote, a HIT, an import, a
    payment) or is written by a job, and the figures built from it would silently stop matching. The change
    page renders read-only; a POST to change, add or delete is refused (403)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LargeTableAdmin(RecordAdmin):
    """A record table of a size that must not be counted (see CappedCountPaginator)."""

    paginator = CappedCountPaginator
    show_full_result_count = False
