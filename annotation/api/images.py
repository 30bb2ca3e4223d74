"""REST API for candidate images: submit an import (files or URLs), poll it, list a synset's candidates.
Only researchers and admins import; the heavy work runs in Celery (annotation.image_tasks)."""

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from annotation.api.campaigns import campaign_for
from annotation.api.hits import call
from annotation.models import Candidate, ImportBatch, ImportItem
from annotation.selectors import images as selectors
from annotation.services import images as services
from taxonomy import selectors as taxonomy
from taxonomy.models import Synset
from workers.roles import Role
from workers.services import user_has_role


class IsResearcher(BasePermission):
    message = "Only researchers and admins may import or list candidate images."

    def has_permission(self, request, view) -> bool:
        return user_has_role(request.user, Role.RESEARCHER) or user_has_role(request.user, Role.ADMIN)


def _synset(wnid: str) -> Synset:
    try:
        return taxonomy.synset_get(wnid=wnid)
    except taxonomy.InvalidWnid as error:
        raise ValidationError({"synset": [str(error)]}, code="invalid_wnid") from None
    except Synset.DoesNotExist:
        raise ValidationError({"synset": [f"No synset {wnid} in this database."]}, code="unknown_synset") from None


def _batch_payload(batch: ImportBatch, request) -> dict:
    return {
        "id": batch.id,
        "synset": batch.synset.wnid,
        "source": batch.source,
        "query_term": batch.query_term,
        "status": batch.status,
        "total": batch.total,
        "processed": batch.processed,
        "counts": {
            "accepted": batch.accepted,
            "duplicate": batch.duplicate,
            "near_duplicate": batch.near_duplicate,
            "rejected": batch.rejected,
        },
        "error": batch.error,
        "created": batch.created,
        "finished": batch.finished,
        "items_url": reverse("image-import-items", args=[batch.id], request=request),
    }


BatchSerializer = inline_serializer(
    "ImageImport",
    {
        "id": serializers.IntegerField(),
        "synset": serializers.CharField(),
        "source": serializers.CharField(),
        "query_term": serializers.CharField(),
        "status": serializers.ChoiceField(ImportBatch.Status.choices),
        "total": serializers.IntegerField(),
        "processed": serializers.IntegerField(),
        "counts": serializers.DictField(child=serializers.IntegerField()),
        "error": serializers.CharField(),
        "created": serializers.DateTimeField(),
        "finished": serializers.DateTimeField(allow_null=True),
        "items_url": serializers.URLField(),
    },
)


class ImageImportApi(APIView):
    """Start an import for a synset: multipart ``files`` (several) or JSON ``urls``. Answers 202 with the
    batch; poll its URL for the status and the per-file results."""

    permission_classes = [IsResearcher]

    class ImageImportInputSerializer(serializers.Serializer):
        synset = serializers.CharField(max_length=9)
        campaign = serializers.IntegerField(
            required=False, help_text="a campaign of yours: the synset must be one of its synsets"
        )
        query_term = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        urls = serializers.ListField(child=serializers.CharField(max_length=2048), required=False)
        files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False)

    @extend_schema(request=ImageImportInputSerializer, responses={202: BatchSerializer})
    def post(self, request):
        try:
            data = request.data
        except TooManyFilesSent:  # Django's guard (DATA_UPLOAD_MAX_NUMBER_FILES), raised while parsing
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
            raise ValidationError(
                {"detail": [f"At most {limit:,} files per upload request."]}, code="too_many"
            ) from None
        if hasattr(data, "getlist"):  # multipart: several files under one name
            data = {**data.dict(), "files": request.FILES.getlist("files")}
        payload = self.ImageImportInputSerializer(data=data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        synset = _synset(values["synset"])
        campaign = campaign_for(request, values["campaign"]) if "campaign" in values else None
        call(services.import_permitted, user=request.user, synset=synset, campaign=campaign)
        files, urls = values.get("files") or [], values.get("urls") or []
        if bool(files) == bool(urls):
            raise ValidationError({"detail": ["Send either image files (multipart 'files') or a list of 'urls'."]})
        if len(urls) > settings.IMAGE_IMPORT_MAX_URLS:
            limit = settings.IMAGE_IMPORT_MAX_URLS
            raise ValidationError({"urls": [f"At most {limit:,} URLs per import."]}, code="too_many")
        if files:  # the claim again, under its lock; a full disk
            batch = call(
                services.import_upload_submit, user=request.user, synset=synset, files=files,
                query_term=values["query_term"],
            )  # fmt: skip
        else:
            batch = call(
                services.import_urls_submit, user=request.user, synset=synset, urls=urls,
                query_term=values["query_term"],
            )  # fmt: skip
        return Response(_batch_payload(batch, request), status=202)


class ImageImportDetailApi(APIView):
    """An import's status and counts; only its creator's (and the admins'): another's answers 404."""

    permission_classes = [IsResearcher]

    @extend_schema(responses=BatchSerializer)
    def get(self, request, batch_id: int):
        return Response(_batch_payload(_batch_or_404(request, batch_id), request))


def _batch_or_404(request, batch_id: int) -> ImportBatch:
    try:
        return selectors.import_batch_get(batch_id=batch_id, user=request.user)
    except ImportBatch.DoesNotExist:
        raise Http404(f"No image import {batch_id}.") from None


class ImportItemSerializer(serializers.ModelSerializer):
    candidate = serializers.IntegerField(source="candidate_id", allow_null=True)

    class Meta:
        model = ImportItem
        fields = ["id", "name", "outcome", "code", "reason", "candidate"]


class ImageImportItemsApi(ListAPIView):
    """Per-file results of an import, in submission order; ``?outcome=rejected`` filters."""

    permission_classes = [IsResearcher]
    serializer_class = ImportItemSerializer

    @extend_schema(parameters=[OpenApiParameter("outcome", str, enum=ImportItem.Outcome.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        outcome = self.request.query_params.get("outcome") or None
        if outcome is not None and outcome not in ImportItem.Outcome.values:
            choices = ", ".join(ImportItem.Outcome.values)
            raise ValidationError({"outcome": [f"outcome must be one of {choices}."]}, code="invalid")
        return selectors.import_items(batch=_batch_or_404(self.request, self.kwargs["batch_id"]), outcome=outcome)


class CandidateSerializer(serializers.ModelSerializer):
    width = serializers.IntegerField(source="image.width")
    height = serializers.IntegerField(source="image.height")
    urls = serializers.SerializerMethodField()

    class Meta:
        model = Candidate
        fields = ["id", "state", "width", "height", "urls", "batch", "created"]

    def get_urls(self, candidate) -> dict[str, str]:
        return selectors.image_urls(candidate.image, self.context.get("request"))


class SynsetCandidatesApi(ListAPIView):
    """A synset's candidates with their image URLs, oldest first; ``?state=new`` filters."""

    permission_classes = [IsResearcher]
    serializer_class = CandidateSerializer

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=Candidate.State.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        state = self.request.query_params.get("state") or None
        if state is not None and state not in Candidate.State.values:
            raise ValidationError({"state": [f"state must be one of {', '.join(Candidate.State.values)}."]})
        wnid = self.kwargs["wnid"]
        try:  # the wnid is the URL's: unknown is 404, as for every URL that names a synset; malformed stays 400
            synset = taxonomy.synset_get(wnid=wnid)
        except taxonomy.InvalidWnid as error:
            raise ValidationError({"wnid": [str(error)]}, code="invalid_wnid") from None
        except Synset.DoesNotExist:
            raise NotFound(f"No synset {wnid} in this database.") from None
        return selectors.synset_candidates(synset_id=synset.id, state=state)


urlpatterns = [
    path("image-imports/", ImageImportApi.as_view(), name="image-imports"),
    path("image-imports/<int:batch_id>/", ImageImportDetailApi.as_view(), name="image-import-detail"),
    path("image-imports/<int:batch_id>/items/", ImageImportItemsApi.as_view(), name="image-import-items"),
    path("synsets/<str:wnid>/candidates/", SynsetCandidatesApi.as_view(), name="synset-candidates"),
]
