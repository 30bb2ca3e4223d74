"""REST for researchers running campaigns: create, list, change state, inspect a synset, override decisions,
add gold, block workers. Researchers see their own campaigns, admins all; crowd workers get 403 and a
campaign that is not yours answers 404. Thin: validate, call one service or selector, serialize."""

from django.contrib.auth.models import User
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.hits import call
from annotation.models import Campaign, CampaignSynset, Candidate
from annotation.selectors import dashboard as selectors
from annotation.services import campaigns as campaign_services
from annotation.services import manage
from taxonomy import selectors as taxonomy
from taxonomy.models import Synset, wnid_from_offset
from workers.roles import Role
from workers.services import user_has_role


class IsResearcher(BasePermission):
    message = "Only researchers and admins may manage campaigns."

    def has_permission(self, request, view) -> bool:
        return user_has_role(request.user, Role.RESEARCHER) or user_has_role(request.user, Role.ADMIN)


def campaign_for(request, campaign_id: int) -> Campaign:
    """The campaign if the user may see it; 404 otherwise (another researcher's campaign does not exist
    for you)."""
    campaign = selectors.campaigns_visible(user=request.user).filter(id=campaign_id).first()
    if campaign is None:
        raise Http404(f"You have no campaign {campaign_id}.")
    return campaign


def campaign_synset_for(campaign: Campaign, wnid: str) -> CampaignSynset:
    try:
        return selectors.campaign_synset_get(campaign=campaign, wnid=wnid)
    except CampaignSynset.DoesNotExist:
        raise Http404(f"Campaign {campaign.id} has no synset {wnid}.") from None


# The policy a campaign shows is the policy a researcher may change (one list, kept by the service).
POLICY_FIELDS = campaign_services.EDITABLE_POLICY


def campaign_payload(campaign: Campaign) -> dict:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "owner": campaign.owner.username,
        "state": campaign.state,
        "allow_sensitive": campaign.allow_sensitive,
        "created": campaign.created,
        "policy": {f: getattr(campaign, f) for f in POLICY_FIELDS} | {"reward_per_hit": str(campaign.reward_per_hit)},
        "synsets": [
            wnid_from_offset(s)
            for s in CampaignSynset.objects.filter(campaign=campaign)
            .order_by("synset_id")
            .values_list("synset_id", flat=True)
        ],
    }


CampaignSerializer = inline_serializer(
    "Campaign",
    {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "owner": serializers.CharField(),
        "state": serializers.ChoiceField(Campaign.State.choices),
        "allow_sensitive": serializers.BooleanField(),
        "created": serializers.DateTimeField(),
        "policy": serializers.DictField(),
        "synsets": serializers.ListField(child=serializers.CharField()),
    },
)


class CampaignPolicyFields(serializers.Serializer):
    """The policy a campaign is created with and may change later (all optional; the model validates)."""

    images_per_hit = serializers.IntegerField(required=False)
    target_per_synset = serializers.IntegerField(required=False)
    min_votes = serializers.IntegerField(required=False)
    max_votes = serializers.IntegerField(required=False)
    confidence = serializers.FloatField(required=False)
    gold_rate = serializers.FloatField(required=False)
    lease_seconds = serializers.IntegerField(required=False)
    reward_per_hit = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=0, required=False)
    quiz_size = serializers.IntegerField(required=False)
    quiz_pass_mark = serializers.FloatField(required=False)
    quiz_retry_seconds = serializers.IntegerField(required=False)
    quiz_per_synset = serializers.BooleanField(
        required=False, help_text="A quiz per synset (workers label only the synsets whose quiz they passed)."
    )
    min_worker_accuracy = serializers.FloatField(
        required=False, help_text="Least accuracy on reference items to keep working, 0 to 0.95 (0: no bar)."
    )
    boxes_enabled = serializers.BooleanField(
        required=False,
        help_text="Collect bounding boxes: accepted candidates enter the box pipeline (draw, check quality, check "
        "coverage). Turned off, no new box tasks are leased; the boxes already accepted stay.",
    )


class CampaignListApi(APIView):
    """Your campaigns (all of them for admins), newest first; POST creates a draft campaign."""

    permission_classes = [IsResearcher]

    class CampaignListInput(CampaignPolicyFields):
        name = serializers.CharField(max_length=200)
        wnids = serializers.ListField(child=serializers.CharField(max_length=9), allow_empty=False, max_length=30000)
        allow_sensitive = serializers.BooleanField(default=False)

    @extend_schema(
        responses=inline_serializer(
            "CampaignListItem",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "state": serializers.CharField(),
                "owner": serializers.CharField(),
                "synsets": serializers.IntegerField(),
                "accepted": serializers.IntegerField(),
                "target": serializers.IntegerField(),
                "votes": serializers.IntegerField(),
                "answers": serializers.IntegerField(),
            },
            many=True,
        )
    )
    def get(self, request):
        return Response(selectors.campaign_list(user=request.user))

    @extend_schema(request=CampaignListInput, responses={201: CampaignSerializer})
    def post(self, request):
        payload = self.CampaignListInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = dict(payload.validated_data)
        try:
            campaign = call(campaign_services.campaign_create, owner=request.user, **values)
        except Exception as error:  # model validation of the policy (full_clean)
            from django.core.exceptions import NON_FIELD_ERRORS
            from django.core.exceptions import ValidationError as ModelValidationError

            if isinstance(error, ModelValidationError):
                errors = {
                    "non_field_errors" if field == NON_FIELD_ERRORS else field: messages
                    for field, messages in error.message_dict.items()
                }
                raise ValidationError(errors, code="invalid") from None
            raise
        return Response(campaign_payload(campaign), status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    """A campaign with its policy; PATCH changes the policy of a campaign that is not finished."""

    permission_classes = [IsResearcher]

    class CampaignPolicyInput(CampaignPolicyFields):
        def validate(self, attrs):
            unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
            if unknown:
                raise ValidationError(f"These fields cannot be changed: {', '.join(unknown)}.")
            if not attrs:
                raise ValidationError("Send at least one policy field to change.")
            return attrs

    @extend_schema(responses=CampaignSerializer)
    def get(self, request, campaign_id: int):
        campaign = campaign_for(request, campaign_id)
        return Response(campaign_payload(campaign))

    @extend_schema(request=CampaignPolicyInput, responses=CampaignSerializer)
    def patch(self, request, campaign_id: int):
        campaign = campaign_for(request, campaign_id)
        payload = self.CampaignPolicyInput(data=request.data)
        payload.is_valid(raise_exception=True)
        campaign = call(campaign_services.campaign_update_policy, campaign=campaign, **payload.validated_data)
        return Response(campaign_payload(campaign))


class CampaignStateApi(APIView):
    """Start (running), pause (paused), resume (running) or finish (finished) a campaign."""

    permission_classes = [IsResearcher]

    class CampaignStateInput(serializers.Serializer):
        state = serializers.ChoiceField(["running", "paused", "finished"])

    @extend_schema(request=CampaignStateInput, responses=CampaignSerializer)
    def post(self, request, campaign_id: int):
        campaign = campaign_for(request, campaign_id)
        payload = self.CampaignStateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        campaign = call(campaign_services.campaign_set_state, campaign=campaign, state=payload.validated_data["state"])
        return Response(campaign_payload(campaign))


class LabelSetExpandApi(APIView):
    """The wnids of a label set picked in the taxonomy: the synset itself, its children, the leaves of its
    subtree, or the whole subtree (which always overlaps; the check says so)."""

    permission_classes = [IsResearcher]

    @extend_schema(
        parameters=[
            OpenApiParameter("root", str, required=True, description="a wnid (n02084071) or a synset name (dog.n.01)"),
            OpenApiParameter("mode", str, enum=["self", "children", "leaves", "subtree"]),
        ],
        responses=inline_serializer(
            "LabelSetExpansion",
            {"root": serializers.CharField(), "mode": serializers.CharField(), "wnids": serializers.ListField()},
        ),
    )
    def get(self, request):
        root, mode = request.query_params.get("root", "").strip(), request.query_params.get("mode", "leaves")
        try:
            # A wnid, or the name the pages show a synset by (dog.n.01).
            if taxonomy.SYNSET_NAME.fullmatch(root):
                synset = Synset.objects.get(name__iexact=root)
            else:
                synset = taxonomy.synset_get(wnid=root)
        except taxonomy.InvalidWnid as error:
            raise ValidationError({"root": [str(error)]}, code="invalid_wnid") from None
        except Synset.DoesNotExist:
            raise Http404(f"No synset {root} in this database.") from None
        if mode == "self":
            ids = [synset.id]
        elif mode == "children":
            ids = list(taxonomy.synset_children(synset=synset).values_list("id", flat=True))
        elif mode == "leaves":
            ids = list(taxonomy.synset_descendants(synset=synset, leaves_only=True).values_list("id", flat=True))
        elif mode == "subtree":
            ids = [synset.id, *sorted(taxonomy.synset_descendant_ids(synset_id=synset.id))]
        else:
            raise ValidationError({"mode": ["mode must be self, children, leaves or subtree."]}, code="invalid")
        return Response({"root": synset.wnid, "mode": mode, "wnids": [wnid_from_offset(i) for i in ids]})


# ---- One synset of a campaign ---------------------------------------------------------------------------


class SynsetOverviewApi(APIView):
    """A campaign synset: counters, candidates by state, gold, and its learned ImageNet confidence table
    (``table[yes][no]`` = P(present | yes, no))."""

    permission_classes = [IsResearcher]

    @extend_schema(
        responses=inline_serializer(
            "CampaignSynsetOverview",
            {
                "wnid": serializers.CharField(),
                "name": serializers.CharField(),
                "words": serializers.CharField(),
                "gloss": serializers.CharField(),
                "target": serializers.IntegerField(),
                "counters": serializers.DictField(
                    child=serializers.IntegerField(), help_text="accepted, rejected, unresolved, votes"
                ),
                "by_state": serializers.DictField(child=serializers.IntegerField(), help_text="candidates per state"),
                "gold": serializers.IntegerField(),
                "answers": serializers.IntegerField(),
                "confidence_table": serializers.DictField(
                    allow_null=True, help_text="the learned ImageNet table P(present | yes, no), null before a fit"
                ),
            },
        )
    )
    def get(self, request, campaign_id: int, wnid: str):
        campaign = campaign_for(request, campaign_id)
        cs = campaign_synset_for(campaign, wnid)
        return Response(selectors.synset_overview(campaign=campaign, campaign_synset=cs))


CANDIDATE_ROW = {
    "id": serializers.IntegerField(),
    "state": serializers.CharField(),
    "votes": serializers.IntegerField(),
    "yes": serializers.IntegerField(),
    "posterior": serializers.FloatField(allow_null=True),
    "gold": serializers.CharField(allow_null=True),
    "override": serializers.DictField(allow_null=True),
    "thumbnail": serializers.CharField(),
    "medium": serializers.CharField(help_text="the image at up to 1024 px on its longer side, to look closer"),
    "width": serializers.IntegerField(),
    "height": serializers.IntegerField(),
    "boxes": serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="final boxes as [x1, y1, x2, y2] in pixels of the width × height image",
    ),
}


class _CandidatePage(ListAPIView):
    permission_classes = [IsResearcher]

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(selectors.candidate_rows(page, request))


class SynsetCandidatesApi(_CandidatePage):
    """The synset's candidates with thumbnails, votes and posterior, by id; ``?state=accepted`` filters."""

    @extend_schema(
        parameters=[OpenApiParameter("state", str, enum=Candidate.State.values)],
        responses=inline_serializer("CampaignCandidate", CANDIDATE_ROW, many=True),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["campaign_id"])
        cs = campaign_synset_for(campaign, self.kwargs["wnid"])
        state = self.request.query_params.get("state") or None
        if state is not None and state not in Candidate.State.values:
            raise ValidationError({"state": [f"state must be one of {', '.join(Candidate.State.values)}."]})
        return selectors.synset_candidates(synset_id=cs.synset_id, state=state)


class SynsetDisagreementsApi(_CandidatePage):
    """Candidates with split votes, the most evenly split first."""

    @extend_schema(responses=inline_serializer("CampaignDisagreement", CANDIDATE_ROW, many=True))
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["campaign_id"])
        cs = campaign_synset_for(campaign, self.kwargs["wnid"])
        return selectors.synset_disagreements(synset_id=cs.synset_id)


class GoldPromoteApi(APIView):
    """Promote confidently accepted candidates to present gold and confidently rejected ones to absent gold."""

    permission_classes = [IsResearcher]

    class GoldPromoteInput(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=500, default=20)

    @extend_schema(
        request=GoldPromoteInput,
        responses=inline_serializer(
            "GoldPromotion", {"present": serializers.IntegerField(), "absent": serializers.IntegerField()}
        ),
    )
    def post(self, request, campaign_id: int, wnid: str):
        campaign = campaign_for(request, campaign_id)
        cs = campaign_synset_for(campaign, wnid)
        payload = self.GoldPromoteInput(data=request.data)
        payload.is_valid(raise_exception=True)
        result = call(
            manage.gold_promote,
            campaign=campaign,
            synset_id=cs.synset_id,
            limit=payload.validated_data["limit"],
            by=request.user,
        )
        return Response({"present": result.present, "absent": result.absent}, status=status.HTTP_201_CREATED)


AUDIT_SUMMARY = {
    "judged": serializers.IntegerField(),
    "correct": serializers.IntegerField(),
    "precision": serializers.FloatField(allow_null=True, help_text="share of the judged images judged right"),
    "wilson95": serializers.ListField(child=serializers.FloatField(), allow_null=True),
    "model_estimate": serializers.FloatField(
        allow_null=True, help_text="mean posterior of the same images when judged: what consensus expected"
    ),
    "wrong_still_accepted": serializers.ListField(child=serializers.IntegerField()),
    "unjudged": serializers.IntegerField(help_text="accepted images of the synset nobody has judged"),
}


class SynsetAuditApi(APIView):
    """The synset's precision audit: accepted images drawn at random for you to judge yourself, and what
    the verdicts so far say (sampled precision with its 95% interval, beside the model's estimate for the same
    images). ``limit`` (1 to 50, default 12): how many of the next drawn images to show."""

    permission_classes = [IsResearcher]

    class AuditQuery(serializers.Serializer):
        limit = serializers.IntegerField(required=False, min_value=1, max_value=selectors.AUDIT_WINDOW, default=12)

    @extend_schema(
        parameters=[AuditQuery],
        responses=inline_serializer(
            "SynsetAudit",
            {
                "summary": inline_serializer("AuditSummary", AUDIT_SUMMARY),
                "sample": inline_serializer("AuditSample", CANDIDATE_ROW, many=True),
            },
        ),
    )
    def get(self, request, campaign_id: int, wnid: str):
        campaign = campaign_for(request, campaign_id)
        cs = campaign_synset_for(campaign, wnid)
        query = self.AuditQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(
            selectors.synset_audit(synset_id=cs.synset_id, limit=query.validated_data["limit"], request=request)
        )


class CandidateAuditApi(APIView):
    """Your verdict on an image the synset's audit drew: ``correct`` true if the synset is in it. A changed
    verdict replaces the earlier one. 201 when recorded, 200 when it was already so."""

    permission_classes = [IsResearcher]

    class CandidateAuditInput(serializers.Serializer):
        correct = serializers.BooleanField()

    @extend_schema(
        request=CandidateAuditInput,
        responses=inline_serializer(
            "AuditVerdict",
            {
                "candidate": serializers.IntegerField(),
                "correct": serializers.BooleanField(),
                "summary": inline_serializer("AuditVerdictSummary", AUDIT_SUMMARY),
            },
        ),
    )
    def post(self, request, campaign_id: int, candidate_id: int):
        campaign = campaign_for(request, campaign_id)
        payload = self.CandidateAuditInput(data=request.data)
        payload.is_valid(raise_exception=True)
        judgement, written = call(
            manage.candidate_audit,
            campaign=campaign,
            candidate_id=candidate_id,
            correct=payload.validated_data["correct"],
            by=request.user,
        )
        return Response(
            {
                "candidate": judgement.candidate_id,
                "correct": judgement.correct,
                "summary": selectors.synset_audit_summary(synset_id=judgement.candidate.synset_id),
            },
            status=status.HTTP_201_CREATED if written else status.HTTP_200_OK,
        )


class CandidateOverrideApi(APIView):
    """Accept, reject or re-open a candidate; recorded with your reason and what consensus had said."""

    permission_classes = [IsResearcher]

    class CandidateOverrideInput(serializers.Serializer):
        action = serializers.ChoiceField(["accept", "reject", "reopen"])
        reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    @extend_schema(
        request=CandidateOverrideInput,
        responses=inline_serializer(
            "Override",
            {
                "id": serializers.IntegerField(),
                "candidate": serializers.IntegerField(),
                "action": serializers.CharField(),
                "previous_state": serializers.CharField(),
                "state": serializers.CharField(),
            },
        ),
    )
    def post(self, request, campaign_id: int, candidate_id: int):
        campaign = campaign_for(request, campaign_id)
        payload = self.CandidateOverrideInput(data=request.data)
        payload.is_valid(raise_exception=True)
        record = call(
            manage.candidate_override,
            campaign=campaign,
            candidate_id=candidate_id,
            by=request.user,
            **payload.validated_data,
        )
        return Response(
            {
                "id": record.id,
                "candidate": record.candidate_id,
                "action": record.action,
                "previous_state": record.previous_state,
                "state": record.candidate.state,
            },
            status=status.HTTP_201_CREATED,
        )


class CandidateGoldApi(APIView):
    """Make a candidate a gold item: its image shows the synset (present) or not."""

    permission_classes = [IsResearcher]

    class CandidateGoldInput(serializers.Serializer):
        present = serializers.BooleanField()

    @extend_schema(
        request=CandidateGoldInput,
        responses=inline_serializer(
            "Gold",
            {
                "id": serializers.IntegerField(),
                "candidate": serializers.IntegerField(),
                "present": serializers.BooleanField(),
            },
        ),
    )
    def post(self, request, campaign_id: int, candidate_id: int):
        campaign = campaign_for(request, campaign_id)
        payload = self.CandidateGoldInput(data=request.data)
        payload.is_valid(raise_exception=True)
        gold = call(
            manage.gold_from_candidate,
            campaign=campaign,
            candidate_id=candidate_id,
            present=payload.validated_data["present"],
            by=request.user,
        )
        return Response(
            {"id": gold.id, "candidate": gold.candidate_id, "present": gold.present}, status=status.HTTP_201_CREATED
        )


class WorkerBlockApi(APIView):
    """Block (or, at .../unblock/, unblock) a worker in this campaign, with a reason. A block needs a worker who
    worked in the campaign (404 otherwise) and not blocked there yet; an unblock, one blocked there (409
    otherwise, nothing recorded). A block anywhere drops the worker's votes in every campaign: ``blocked_in``
    lists the campaigns that block them after the change, and after an unblock that leaves other blocks
    standing ``message`` says so (else it is empty)."""

    permission_classes = [IsResearcher]
    unblock = False

    class WorkerBlockInput(serializers.Serializer):
        reason = serializers.CharField(max_length=200)

    @extend_schema(
        request=WorkerBlockInput,
        responses={
            201: inline_serializer(
                "WorkerAction",
                {
                    "worker": serializers.IntegerField(),
                    "action": serializers.ChoiceField(choices=["block", "unblock"]),
                    "reason": serializers.CharField(),
                    "blocked_in": serializers.ListField(
                        child=serializers.IntegerField(),
                        help_text="the campaigns that block the worker after this change; while there is one, "
                        "their votes count in no campaign",
                    ),
                    "message": serializers.CharField(
                        help_text="after an unblock that leaves blocks elsewhere: 'Still blocked in campaign(s) "
                        "N: their votes stay uncounted everywhere until that block is lifted.'; else empty"
                    ),
                },
            )
        },
    )
    def post(self, request, campaign_id: int, worker_id: int):
        campaign = campaign_for(request, campaign_id)
        worker = User.objects.filter(id=worker_id).first()
        if worker is None:
            raise Http404(f"No worker {worker_id}.")
        payload = self.WorkerBlockInput(data=request.data)
        payload.is_valid(raise_exception=True)
        service = manage.worker_unblock if self.unblock else manage.worker_block
        change = call(
            service, worker=worker, campaign=campaign, reason=payload.validated_data["reason"], by=request.user
        )
        return Response(
            {
                "worker": worker.id,
                "action": change.record.action,
                "reason": change.record.reason,
                "blocked_in": change.blocked_in,
                "message": change.message,
            },
            status=status.HTTP_201_CREATED,
        )
