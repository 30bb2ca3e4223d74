"""REST for dataset versions: create (202, built by a Celery job), poll status and progress, list, download
the version folder as one streamed tar. Admins may export any campaign, researchers their own."""

import re

from django.http import Http404, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from export import selectors, services
from export.errors import ExportError
from export.formats import FORMATS
from export.models import DatasetVersion


class ServiceError(APIException):
    def __init__(self, error: ExportError):
        self.status_code = error.status
        super().__init__(detail=error.message, code=error.code)


class MayExport(BasePermission):
    message = "Only admins, and researchers for their own campaigns, may create or read dataset versions."

    def has_permission(self, request, view) -> bool:
        return selectors.user_may_export(request.user)


def _payload(version: DatasetVersion, request) -> dict:
    done = version.status == DatasetVersion.Status.DONE
    return {
        "id": version.id,
        "name": version.name,
        "version": version.version,
        "notes": version.notes,
        "campaigns": sorted(version.campaigns.values_list("id", flat=True)),
        "options": version.options,
        "status": version.status,
        "progress": version.progress,
        "phase": version.phase,
        "error": version.error,
        "images": version.images,
        "labels": version.labels,
        "boxes": version.boxes,
        "file_count": version.file_count,
        "total_bytes": version.total_bytes,
        "manifest_sha256": version.manifest_sha256,
        "created": version.created,
        "snapshot_at": version.snapshot_at,
        "finished": version.finished,
        "url": reverse("dataset-detail", args=[version.id], request=request),
        "download_url": reverse("dataset-download", args=[version.id], request=request) if done else None,
    }


# The export options as the OpenAPI schema documents them (client generators, the docs page). Requests are
# still checked by the service (services.options_normalise), whose errors are sentences; this is the shape.
ExportOptionsSchema = inline_serializer(
    "ExportOptions",
    {
        "synsets": serializers.ListField(
            child=serializers.RegexField(r"^n\d{8}$"), allow_null=True, required=False,
            help_text="wnids to export; null or absent: every synset of the campaigns",
        ),
        "min_confidence": serializers.FloatField(
            min_value=0.0, max_value=1.0, required=False, help_text="least posterior of an exported label"
        ),
        "include_ancestors": serializers.BooleanField(
            required=False, help_text="an image accepted for a synset is also a positive of its ancestors"
        ),
        "split": inline_serializer(
            "ExportSplit",
            {
                "train": serializers.FloatField(min_value=0.0, max_value=1.0, required=False),
                "val": serializers.FloatField(min_value=0.0, max_value=1.0, required=False),
                "test": serializers.FloatField(min_value=0.0, max_value=1.0, required=False),
                "seed": serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False),
            },
            required=False, help_text="fractions adding up to 1 (those left out are 0 when any is given), and a seed",
        ),
        "image_size": inline_serializer(
            "ExportImageSize",
            {
                "policy": serializers.ChoiceField(["original", "resized"]),
                "max_side": serializers.IntegerField(min_value=16, max_value=8192, allow_null=True, required=False),
            },
            required=False, help_text="original files, or resized to max_side on the long side",
        ),
        "formats": serializers.MultipleChoiceField(
            choices=list(FORMATS), required=False, help_text=f"default {', '.join(services.DEFAULT_OPTIONS['formats'])}"
        ),
        "shard_max_images": serializers.IntegerField(min_value=1, max_value=10_000_000, required=False),
        "shard_max_bytes": serializers.IntegerField(min_value=1 << 20, max_value=1 << 40, required=False),
    },
)  # fmt: skip


@extend_schema_field(ExportOptionsSchema)
class ExportOptionsField(serializers.DictField):
    """A JSON object, checked by the service; documented as ExportOptions."""


VERSION_FIELDS = {
    "id": serializers.IntegerField(),
    "name": serializers.CharField(),
    "version": serializers.IntegerField(),
    "notes": serializers.CharField(),
    "campaigns": serializers.ListField(child=serializers.IntegerField()),
    "options": ExportOptionsField(help_text="the export options, defaults filled in"),
    "status": serializers.ChoiceField(DatasetVersion.Status.choices),
    "progress": serializers.FloatField(),
    "phase": serializers.CharField(),
    "error": serializers.CharField(help_text="why the build failed; empty otherwise"),
    "images": serializers.IntegerField(),
    "labels": serializers.IntegerField(),
    "boxes": serializers.IntegerField(),
    "file_count": serializers.IntegerField(),
    "total_bytes": serializers.IntegerField(),
    "manifest_sha256": serializers.CharField(),
    "created": serializers.DateTimeField(),
    "snapshot_at": serializers.DateTimeField(allow_null=True),
    "finished": serializers.DateTimeField(allow_null=True),
    "url": serializers.URLField(),
    "download_url": serializers.URLField(allow_null=True),
}
VersionSerializer = inline_serializer("DatasetVersion", VERSION_FIELDS)


class DatasetListApi(APIView):
    """List the versions you may see, or create one (202: poll its ``url``)."""

    permission_classes = [MayExport]

    class DatasetListInput(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        # Bounded by the service (a sentence); the serializer only needs it to fit an integer.
        version = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
        notes = serializers.CharField(required=False, allow_blank=True, default="")
        campaigns = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=100
        )
        options = ExportOptionsField(required=False, default=dict)

    class DatasetFilter(serializers.Serializer):
        campaign = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)

    @extend_schema(
        parameters=[DatasetFilter],
        responses=inline_serializer("DatasetVersionList", VERSION_FIELDS, many=True),
    )
    def get(self, request):
        query = self.DatasetFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        versions = selectors.versions_visible(user=request.user)
        if "campaign" in query.validated_data:
            versions = versions.filter(campaigns=query.validated_data["campaign"])
        return Response([_payload(v, request) for v in versions.prefetch_related("campaigns")[:200]])

    @extend_schema(request=DatasetListInput, responses={202: VersionSerializer})
    def post(self, request):
        payload = self.DatasetListInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            version = services.dataset_version_create(
                user=request.user, name=data["name"], campaign_ids=data["campaigns"], options=data["options"],
                notes=data["notes"], version=data.get("version"),
            )  # fmt: skip
        except ExportError as error:
            raise ServiceError(error) from None
        return Response(_payload(version, request), status=202)


def _visible(request, version_id: int) -> DatasetVersion:
    version = selectors.versions_visible(user=request.user).filter(id=version_id).first()
    if version is None:
        raise Http404(f"No dataset version {version_id} that you may see.")
    return version


class DatasetDetailApi(APIView):
    permission_classes = [MayExport]

    @extend_schema(responses=VersionSerializer)
    def get(self, request, version_id: int):
        return Response(_payload(_visible(request, version_id), request))


def _byte_range(request, length: int, etag: str) -> tuple[int, int] | None:
    """The one byte range (first, last inclusive) a ranged request asks for, or None for the whole body: no
    Range header, one this server ignores as RFC 9110 lets it (another unit, several ranges, a malformed one),
    or an If-Range that does not name this version. Raises RangeNotSatisfiable for a range past the end."""
    header = request.headers.get("Range", "")
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or not any(match.groups()):
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None
    first, last = match.groups()
    if not first:  # the last so many bytes
        if int(last) == 0:
            raise RangeNotSatisfiable(length)
        return max(length - int(last), 0), length - 1
    if last and int(last) < int(first):
        return None  # invalid: ignored
    if int(first) >= length:
        raise RangeNotSatisfiable(length)
    return int(first), min(int(last), length - 1) if last else length - 1


class RangeNotSatisfiable(APIException):
    status_code = 416
    default_code = "range_not_satisfiable"

    def __init__(self, length: int):
        self.length = length
        super().__init__(f"The range asked for starts past the end of the {length}-byte archive.")


class DatasetDownloadApi(APIView):
    """The version folder as one uncompressed tar, streamed (files in manifest order, then manifest.json;
    fixed headers, so two downloads are byte-identical). Unpack and check with ``sha256sum``. Resumable: a
    ``Range: bytes=N-`` request (``curl -C -``, ``wget -c``) gets the rest as a 206; the ETag names the
    version's content, for ``If-Range``."""

    permission_classes = [MayExport]

    @extend_schema(
        responses={
            (200, "application/x-tar"): OpenApiResponse(description="tar of the version"),
            (206, "application/x-tar"): OpenApiResponse(description="the byte range asked for (Range header)"),
            409: OpenApiResponse(description="the version is not done (failed: the reason, and how to retry)"),
            416: OpenApiResponse(description="the range starts past the end of the archive"),
        }
    )
    def get(self, request, version_id: int):
        version = _visible(request, version_id)
        etag = f'"{version.id}-{version.manifest_sha256[:32]}"'
        try:
            length, chunks = services.version_download(version)
        except ExportError as error:
            raise ServiceError(error) from None
        wanted = _byte_range(request, length, etag)
        first, last = wanted or (0, length - 1)
        response = StreamingHttpResponse(
            chunks(first, last + 1), content_type="application/x-tar", status=206 if wanted else 200
        )
        response["Content-Length"] = str(last - first + 1)
        if wanted:
            response["Content-Range"] = f"bytes {first}-{last}/{length}"
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = etag
        response["Content-Disposition"] = content_disposition_header(True, services.download_filename(version))
        return response

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, RangeNotSatisfiable):
            response["Content-Range"] = f"bytes */{exc.length}"
        return response
