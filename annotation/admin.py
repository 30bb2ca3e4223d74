from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpResponseRedirect

from annotation.errors import AnnotationError
from annotation.models import Campaign, CampaignSynset, Candidate, GoldItem, Hit, Image, ImportBatch, ImportItem, Vote
from annotation.services import manage
from annotation.services.campaigns import EDITABLE_POLICY, TRANSITIONS, campaign_set_state, campaign_update_policy
from annotation.services.images import image_delete_unused
from config.admin import LargeTableAdmin, RecordAdmin
from workers.models import WorkerProfile


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

    def has_add_permission(self, request) -> bool:
        return False  # images come through the imports (hashing, thumbnails, duplicate checks)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            # Candidates cannot be deleted in the admin either (CandidateAdmin), which Django would report instead
            # of the protected list; an image's only other relations are protected too, so the list says it all.
            perms_needed = set()
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
class CandidateAdmin(LargeTableAdmin):
    """Read-only. A candidate's state, posterior and counters are set by the consensus jobs
    (annotation/services/consensus.py, refit.py); a researcher's decision against them goes through
    ``candidate_override`` on the campaign's page or API, which moves the campaign's counters and records who and
    why. Deleting one would take its votes, gold answer, boxes and overrides with it. Candidates come from the
    imports. The table is the scheduler's (10^8 rows): its list is never counted."""

    list_display = ["id", "synset", "state", "posterior", "votes_count", "image", "batch", "created"]
    list_filter = ["state"]
    raw_id_fields = ["image", "synset", "batch"]
    list_select_related = ["synset", "image", "batch"]


class ImportItemInline(admin.TabularInline):
    model = ImportItem
    fields = ["name", "outcome", "code", "reason", "candidate"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportBatch)
class ImportBatchAdmin(RecordAdmin):
    """Read-only, with its items: a batch and its items record what an import brought and what it refused (and
    why). Imports are started on the import pages, the API or ``manage.py import_images``; deleting a batch would
    erase its items and the candidates' provenance."""

    list_display = ["id", "synset", "source", "status", "accepted", "duplicate", "near_duplicate", "rejected",
                    "created_by", "created"]  # fmt: skip
    list_filter = ["status", "source"]
    raw_id_fields = ["synset", "created_by"]
    list_select_related = ["synset", "created_by"]
    inlines = [ImportItemInline]


class CampaignSynsetInline(admin.TabularInline):
    """The label set as created: ``campaign_create`` checks it (no overlap, sensitive synsets, other researchers'
    claims) and the counters are the services'. Neither is changed here."""

    model = CampaignSynset
    fields = ["synset", "accepted", "rejected", "unresolved", "votes"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class CampaignForm(forms.ModelForm):
    """Refuses what the services would refuse, as form errors and in their words: a state change the campaign
    cannot make, and a policy change of a finished campaign."""

    class Meta:
        model = Campaign
        fields = ["name", "state", *EDITABLE_POLICY]

    def clean(self):
        data = super().clean()
        before = Campaign.objects.get(pk=self.instance.pk)
        state = data.get("state", before.state)
        if state != before.state and state not in TRANSITIONS[before.state]:
            self.add_error("state", f"A {before.state} campaign cannot become {state}.")
        if before.state == Campaign.State.FINISHED and set(EDITABLE_POLICY).intersection(self.changed_data):
            raise forms.ValidationError("A finished campaign's policy cannot change.")
        if "name" in self.changed_data and data.get("name"):
            # The owner is not a field of this form, so Django leaves campaign_owner_name_unique out of the form's
            # own checks: asked here, the rename to a name the owner has is a sentence, not an IntegrityError.
            renamed = Campaign(pk=before.pk, owner_id=before.owner_id, name=data["name"])
            others = [f.name for f in Campaign._meta.fields if f.name not in ("name", "owner")]
            try:
                renamed.validate_constraints(exclude=others)
            except ValidationError as error:
                self.add_error("name", error.messages)
        return data


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """The name, the policy and the state may be changed; the policy goes through ``campaign_update_policy`` (a
    change of the decision policy re-evaluates the candidates) and the state through ``campaign_set_state`` (its
    transitions; finishing weighs the votes still waiting). The owner, the label set and the sensitive opt-in stay
    as created, and the refit's figures are the job's. Campaigns are created on the researcher pages or the API
    (label-set checks, synset claims, roll-ups). Only a campaign that never ran and that no dataset version
    names can be deleted: any other would take its HITs and votes, or a version's record, with it."""

    form = CampaignForm
    list_display = [
        "id", "name", "owner", "state", "images_per_hit", "min_votes", "max_votes", "confidence", "boxes_enabled",
        "created",
    ]  # fmt: skip
    list_filter = ["state", "boxes_enabled"]
    search_fields = ["name"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "allow_sensitive", "running_since", "prior_present", "model_version",
                       "votes_at_refit", "refitted"]  # fmt: skip
    inlines = [CampaignSynsetInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is None:
            return True  # the bulk action asks per campaign (Django's collector)
        return (
            obj.running_since is None
            and obj.state in (Campaign.State.DRAFT, Campaign.State.FINISHED)
            and (not obj.dataset_versions.exists())
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The form checked the change against the campaign as it was read; a researcher may finish the campaign,
        or its owner take the new name, before the save takes the campaign's lock. Then the services refuse, Django's
        transaction undoes whatever the save had done, and the page says so and shows the campaign as it is now (it
        was a 500)."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AnnotationError as error:
            refused = error.message
        except IntegrityError as error:
            if "campaign_owner_name_unique" not in str(error):
                raise
            refused = "Its owner has just given another campaign this name."
        self.message_user(request, f"Nothing was saved. {refused} This is the campaign as it is now.", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        if not change:  # pragma: no cover - adding is not offered
            raise PermissionError("Campaigns are created on the researcher pages or the API.")
        campaign = Campaign.objects.get(pk=obj.pk)
        if "name" in form.changed_data:
            Campaign.objects.filter(pk=obj.pk).update(name=obj.name)
        policy = {field: getattr(obj, field) for field in EDITABLE_POLICY if field in form.changed_data}
        if policy:
            campaign = campaign_update_policy(campaign=campaign, **policy)
        if "state" in form.changed_data:
            campaign_set_state(campaign=campaign, state=obj.state)
        obj.refresh_from_db()


@admin.register(GoldItem)
class GoldItemAdmin(RecordAdmin):
    """Read-only. Gold items are made through ``gold_from_candidate`` and ``gold_promote`` (the researcher pages
    and API), which lock the candidate and copy its synset; workers' gold accuracy, their screening and the
    quizzes were scored against the answer, so it is not changed or removed afterwards."""

    list_display = ["id", "candidate", "synset", "present", "created_by", "created"]
    list_filter = ["present"]
    raw_id_fields = ["candidate", "synset", "created_by"]
    list_select_related = ["candidate", "synset", "created_by"]


@admin.register(Hit)
class HitAdmin(LargeTableAdmin):
    """Read-only. HITs are leased, submitted and expired by annotation/services/hits.py; a HIT's figures feed the
    roll-ups and its ledger entry pays for it, and deleting one would take its votes with it."""

    list_display = ["id", "campaign", "synset", "worker", "status", "created", "expires_at", "submitted_at"]
    list_filter = ["status", "campaign"]
    search_fields = ["worker__username"]
    raw_id_fields = ["campaign", "synset", "worker"]
    list_select_related = ["campaign", "synset", "worker"]


@admin.register(Vote)
class VoteAdmin(LargeTableAdmin):
    """Read-only: votes are append-only. Consensus, worker reliability, pay and the dashboard roll-ups are
    computed from them, so a changed answer or a deleted vote would silently disagree with all of those. The
    vote table is the largest: its list is never counted (LargeTableAdmin)."""

    list_display = ["id", "candidate", "worker", "hit", "answer", "response_ms", "is_gold", "created"]
    list_filter = ["answer", "is_gold"]
    raw_id_fields = ["candidate", "worker", "hit"]


class ReasonActionForm(ActionForm):
    reason = forms.CharField(max_length=200, required=False, label="Reason")


@admin.register(WorkerProfile)
class WorkerProfileAdmin(admin.ModelAdmin):
    """Only the marketplace id may be changed. The figures are kept by the services that record work and by the
    refit (a changed one would disagree with the votes). Blocking and unblocking everywhere are actions with a
    reason, through ``worker_block`` / ``worker_unblock`` as on the workers page (/manage/workers/): the campaigns'
    qualifications follow and a WorkerAction records who and why. Profiles are created with the accounts and
    not deleted here."""

    action_form = ReasonActionForm
    actions = ["block_everywhere", "unblock_everywhere"]

    list_display = ["user", "external_id", "hits_done", "answers", "gold_answered", "gold_correct", "reliability",
                    "blocked"]  # fmt: skip
    list_filter = ["blocked"]
    search_fields = ["user__username", "external_id"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in WorkerProfile._meta.fields if f.name not in ("id", "external_id")]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Block the selected workers everywhere (give a reason)")
    def block_everywhere(self, request, queryset) -> None:
        self._each(request, queryset, "worker_block", "Blocked")

    @admin.action(description="Unblock the selected workers everywhere (give a reason)")
    def unblock_everywhere(self, request, queryset) -> None:
        self._each(request, queryset, "worker_unblock", "Unblocked")

    def _each(self, request, queryset, service: str, done: str) -> None:
        reason = request.POST.get("reason", "")
        names = []
        for profile in queryset.select_related("user").order_by("user_id"):
            try:
                getattr(manage, service)(worker=profile.user, reason=reason, by=request.user)
            except AnnotationError as error:
                self.message_user(request, f"{profile.user.username}: {error}", messages.ERROR)
            else:
                names.append(profile.user.username)
        if names:
            self.message_user(request, f"{done} everywhere: {', '.join(names)}.", messages.SUCCESS)
