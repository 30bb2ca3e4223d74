from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from taxonomy import selectors
from taxonomy.models import Synset


class SynsetBriefSerializer(serializers.ModelSerializer):
    wnid = serializers.CharField(read_only=True)
    lemmas = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Synset
        fields = ["wnid", "name", "lemmas", "gloss", "depth", "sensitive"]


class SynsetDetailSerializer(SynsetBriefSerializer):
    lexname = serializers.CharField()
    parents = SynsetBriefSerializer(many=True)
    children = SynsetBriefSerializer(many=True)
    paths_to_root = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    descendant_count = serializers.IntegerField()
    query_terms = serializers.ListField(child=serializers.CharField())

    class Meta(SynsetBriefSerializer.Meta):
        fields = [
            *SynsetBriefSerializer.Meta.fields,
            "lexname",
            "parents",
            "children",
            "paths_to_root",
            "descendant_count",
            "query_terms",
        ]


def _synset_or_error(wnid: str) -> Synset:
    try:
        return selectors.synset_get(wnid=wnid)
    except selectors.InvalidWnid as error:
        raise ValidationError({"wnid": [str(error)]}, code="invalid_wnid") from None
    except Synset.DoesNotExist:
        raise Http404(f"No synset {wnid} in this database.") from None


class SynsetSearchApi(ListAPIView):
    """Search synsets by wnid, lemma or words of the gloss."""

    permission_classes = [AllowAny]
    serializer_class = SynsetBriefSerializer

    @extend_schema(parameters=[OpenApiParameter("q", str, required=True, description="wnid, lemma or gloss words")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = selectors.search_terms(self.request.query_params.get("q", ""))
        if not query:
            raise ValidationError({"q": ["Give a search term: a lemma, gloss words or a wnid."]}, code="required")
        if len(query) > 200:
            raise ValidationError({"q": ["The search term is longer than 200 characters."]}, code="too_long")
        return selectors.synset_search(query=query)


class SynsetDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=SynsetDetailSerializer)
    def get(self, request, wnid: str):
        synset = _synset_or_error(wnid)
        data = {
            **SynsetBriefSerializer(synset).data,
            "lexname": synset.lexname,
            "parents": SynsetBriefSerializer(selectors.synset_parents(synset=synset), many=True).data,
            "children": SynsetBriefSerializer(selectors.synset_children(synset=synset), many=True).data,
            "paths_to_root": [[s.wnid for s in path] for path in selectors.synset_paths_to_root(synset=synset)],
            "descendant_count": selectors.synset_descendants(synset=synset).count(),
            "query_terms": selectors.synset_query_terms(synset=synset),
        }
        return Response(data)


class SynsetDescendantsApi(ListAPIView):
    """Descendants of a synset (all, or only leaves), paginated; ``count`` is the total."""

    permission_classes = [AllowAny]
    serializer_class = SynsetBriefSerializer

    @extend_schema(parameters=[OpenApiParameter("leaves", bool, description="only synsets without children")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        leaves = self.request.query_params.get("leaves", "false").lower()
        if leaves not in {"true", "false", "1", "0"}:
            raise ValidationError({"leaves": ["leaves must be true or false."]}, code="invalid")
        synset = _synset_or_error(self.kwargs["wnid"])
        return selectors.synset_descendants(synset=synset, leaves_only=leaves in {"true", "1"})


NAMED_MEMBERS = 100  # names for a label set's first members: a page shows some, a set may have 30,000


class LabelSetCheckApi(APIView):
    """Check a label set: no member may be an ancestor of another; sensitive members need an opt-in."""

    permission_classes = [AllowAny]

    class LabelSetInput(serializers.Serializer):
        wnids = serializers.ListField(child=serializers.CharField(max_length=9), allow_empty=False, max_length=30000)

    @extend_schema(
        request=LabelSetInput,
        responses=inline_serializer(
            "LabelSetReport",
            {
                "ok": serializers.BooleanField(),
                "count": serializers.IntegerField(),
                "unknown": serializers.ListField(child=serializers.CharField()),
                "overlaps": serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
                "sensitive": serializers.ListField(child=serializers.CharField()),
                "names": serializers.DictField(
                    child=serializers.CharField(),
                    help_text=f"wnid → words, for the first {NAMED_MEMBERS} members as sent and those the first 10 "
                    "overlaps and first 20 sensitive members name (so that a page shows names, not only codes)",
                ),
            },
        ),
    )
    def post(self, request):
        payload = self.LabelSetInput(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            report = selectors.label_set_check(wnids=payload.validated_data["wnids"])
        except selectors.InvalidWnid as error:
            raise ValidationError({"wnids": [str(error)]}, code="invalid_wnid") from None
        return Response(
            {
                "ok": report.ok,
                "count": len(report.synsets),
                "unknown": report.unknown,
                "overlaps": [list(pair) for pair in report.overlaps],
                "sensitive": report.sensitive,
                "names": selectors.label_set_names(
                    report=report, first=payload.validated_data["wnids"][:NAMED_MEMBERS]
                ),
            }
        )
