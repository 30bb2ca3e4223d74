"""The researcher dashboard's JSON, one endpoint per panel under /api/v1/campaigns/<id>/dashboard/, and the
Prometheus metrics at /metrics. All of it reads rollups and counters (annotation.selectors.dashboard), never
the vote table, so every call stays fast on a campaign of 10^7 votes (benchmarks/dashboard.py)."""

import hmac

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.campaigns import IsResearcher, campaign_for
from annotation.selectors import dashboard as selectors
from annotation.services import rollups
from annotation.services.boxes import box_jobs_enter_request

Series = {
    "labels": serializers.ListField(child=serializers.DateTimeField()),
    "answers_per_minute": serializers.ListField(child=serializers.FloatField()),
    "hits_per_hour": serializers.ListField(child=serializers.FloatField()),
    "active_workers": serializers.ListField(child=serializers.IntegerField()),
}


class _Panel(APIView):
    permission_classes = [IsResearcher]


class SummaryApi(_Panel):
    """Headline figures (state, accepted of target, answers, workers, spent, the last five minutes' rates) and,
    with boxes on, the box pipeline's; each poll also lets newly accepted images enter that pipeline (at most
    every 30 s: ``box_jobs_enter_request``)."""

    @extend_schema(
        responses=inline_serializer(
            "DashboardSummary",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "state": serializers.CharField(),
                "next_states": serializers.ListField(child=serializers.CharField()),
                "synsets": serializers.IntegerField(),
                "rejected": serializers.IntegerField(),
                "unresolved": serializers.IntegerField(),
                "votes": serializers.IntegerField(),
                "model_version": serializers.CharField(allow_null=True),
                "refitted": serializers.DateTimeField(allow_null=True),
                "accepted": serializers.IntegerField(),
                "target": serializers.IntegerField(),
                "answers": serializers.IntegerField(),
                "hits": serializers.IntegerField(),
                "workers": serializers.IntegerField(),
                "spent": serializers.CharField(),
                "answers_per_minute_5m": serializers.FloatField(),
                "hits_per_hour_5m": serializers.FloatField(),
                "active_workers_5m": serializers.IntegerField(),
                "boxes_enabled": serializers.BooleanField(),
                "gold_items": serializers.IntegerField(
                    help_text="gold items of the campaign's synsets; workers qualify through a quiz of them, so "
                    "with none nobody can start"
                ),
                "boxes": serializers.DictField(
                    child=serializers.IntegerField(),
                    allow_null=True,
                    help_text="Box pipeline: images per state (draw, quality, coverage, done, no_object, "
                    "unresolved, withdrawn), images, and boxes (accepted); null when the campaign never collected "
                    "boxes.",
                ),
            },
        )
    )
    def get(self, request, campaign_id: int):
        campaign = campaign_for(request, campaign_id)
        box_jobs_enter_request(campaign=campaign)
        return Response(selectors.summary(campaign=campaign))


class ThroughputApi(_Panel):
    """Answers per minute, HITs per hour and active workers over ``window``: ``hour`` (a point a minute),
    ``day`` (a point an hour) or ``all`` (hours, grouped to at most 168 points)."""

    @extend_schema(
        parameters=[OpenApiParameter("window", str, enum=["hour", "day", "all"])],
        responses=inline_serializer(
            "Throughput",
            {
                "window": serializers.CharField(),
                "bucket_seconds": serializers.IntegerField(),
                **Series,
                "totals": serializers.DictField(),
            },
        ),
    )
    def get(self, request, campaign_id: int):
        window = request.query_params.get("window", "hour")
        if window not in {"hour", "day", "all"}:
            raise ValidationError({"window": ["window must be hour, day or all."]}, code="invalid")
        return Response(selectors.throughput(campaign=campaign_for(request, campaign_id), window=window))


class ProgressApi(_Panel):
    """Per synset against the target, with starved / stuck / short flags, answers still needed and the
    campaign's time to finish at the last hour's rate. Candidate figures are recounted in the background
    at most every DASHBOARD_RECOUNT_SECONDS. Totals cover every synset; ``q``, ``sort``, ``limit`` and
    ``offset`` choose the synsets listed (all, by wnid, without them) and ``matched`` counts those ``q``
    finds."""

    class ProgressQuery(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        sort = serializers.ChoiceField(
            choices=selectors.PROGRESS_SORTS,
            required=False,
            allow_null=True,
            default=None,
            error_messages={"invalid_choice": f"it must be one of {', '.join(selectors.PROGRESS_SORTS)}."},
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=5000, allow_null=True, default=None)
        offset = serializers.IntegerField(required=False, min_value=0, default=0)

    @extend_schema(
        parameters=[ProgressQuery],
        responses=inline_serializer(
            "Progress",
            {
                "target_per_synset": serializers.IntegerField(),
                "answers_per_minute": serializers.FloatField(),
                "totals": serializers.DictField(),
                "matched": serializers.IntegerField(),
                "synsets": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request, campaign_id: int):
        campaign = campaign_for(request, campaign_id)
        query = self.ProgressQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rollups.recount_request(campaign=campaign)
        options = query.validated_data
        return Response(
            selectors.progress(
                campaign=campaign,
                query=options["q"],
                sort=options["sort"],
                limit=options["limit"],
                offset=options["offset"],
            )
        )


class TreeApi(_Panel):
    """Progress rolled up the taxonomy: each ancestor of the campaign's synsets with sums over them."""

    @extend_schema(
        responses=inline_serializer("ProgressTree", {"nodes": serializers.ListField(child=serializers.DictField())})
    )
    def get(self, request, campaign_id: int):
        return Response(selectors.tree(campaign=campaign_for(request, campaign_id)))


class QualityApi(_Panel):
    """Estimated precision per synset and overall, the audited (sampled) precision, gold accuracy and agreement
    distributions of the campaign's workers (ten bins over 0–1), and the workers blocked in it. ``synsets=false``
    leaves out the per-synset list (the dashboard page takes those figures from progress, a page at a time)."""

    class QualityQuery(serializers.Serializer):
        synsets = serializers.BooleanField(required=False, default=True)

    @extend_schema(
        parameters=[QualityQuery],
        responses=inline_serializer(
            "Quality",
            {
                "precision": serializers.FloatField(allow_null=True),
                "precision_labels": serializers.IntegerField(),
                "audit": serializers.DictField(
                    help_text="researchers' verdicts on accepted images drawn at random on the synset pages: judged, "
                    "correct, precision, wilson95, model_estimate, wrong_still_accepted"
                ),
                "gold_accuracy": serializers.FloatField(allow_null=True),
                "bins": serializers.ListField(child=serializers.FloatField()),
                "gold_accuracy_histogram": serializers.ListField(child=serializers.IntegerField()),
                "agreement_histogram": serializers.ListField(child=serializers.IntegerField()),
                "agreement_mean": serializers.FloatField(allow_null=True),
                "gold_answered": serializers.IntegerField(),
                "workers": serializers.IntegerField(),
                "workers_with_gold": serializers.IntegerField(),
                "blocked": serializers.ListField(child=serializers.DictField()),
                "synsets": serializers.ListField(child=serializers.DictField(), required=False),
            },
        ),
    )
    def get(self, request, campaign_id: int):
        campaign = campaign_for(request, campaign_id)
        query = self.QualityQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        # Its precision comes from the recounted figures, as progress's does: either panel may ask first.
        rollups.recount_request(campaign=campaign)
        return Response(selectors.quality(campaign=campaign, with_synsets=query.validated_data["synsets"]))


class CostApi(_Panel):
    """Spent, cost per accepted image, and each worker's effective hourly pay against PAY_FLOOR_PER_HOUR,
    lowest first."""

    @extend_schema(
        responses=inline_serializer(
            "Cost",
            {
                "spent": serializers.CharField(),
                "accepted": serializers.IntegerField(),
                "currency_per_hit": serializers.CharField(),
                "cost_per_accepted": serializers.CharField(allow_null=True),
                "pay_floor_per_hour": serializers.CharField(),
                "median_hourly_pay": serializers.CharField(allow_null=True),
                "workers_below_floor": serializers.IntegerField(),
                "workers": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request, campaign_id: int):
        return Response(selectors.cost(campaign=campaign_for(request, campaign_id)))


# ---- Prometheus -----------------------------------------------------------------------------------------


def metrics(request):
    """Prometheus text format, from the rollups. With METRICS_TOKEN set, a scraper sends
    ``Authorization: Bearer <token>`` (an admin's session also reads it); unset, only an admin's session
    does: campaign names and crowd figures are not for everyone."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    bearer = bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if not (bearer or (request.user.is_authenticated and request.user.is_staff)):
        if request.user.is_authenticated and not sent:
            return HttpResponse("Metrics are for admins and for a scraper with the metrics token.\n", status=403)
        how = "Authorization: Bearer <METRICS_TOKEN>" if token else "an admin's session (or METRICS_TOKEN set)"
        return HttpResponse(f"Metrics need {how}.\n", status=401)

    class Collector:
        def collect(self):
            from django.utils import timezone

            from annotation.models import ActivityBucket, Campaign, CampaignSynset, CampaignWorker
            from workers.models import Qualification

            names = dict(Campaign.objects.values_list("id", "name"))
            labels = ["campaign", "name"]
            work = CampaignWorker.objects.values("campaign_id").annotate(
                hits=Sum("hits"),
                answers=Sum("answers"),
                gold_answered=Sum("gold_answered"),
                gold_correct=Sum("gold_correct"),
                spent=Sum("earned"),
                workers=Count("id"),
            )
            counters = {
                key: CounterMetricFamily(f"synsight_campaign_{key}", help_text, labels=labels)
                for key, help_text in [
                    ("hits", "HITs submitted"),
                    ("answers", "Answers recorded (gold included)"),
                    ("gold_answered", "Answers on gold items"),
                    ("gold_correct", "Correct answers on gold items"),
                ]
            }
            spent = GaugeMetricFamily("synsight_campaign_spent", "Ledger amount of the campaign's HITs", labels=labels)
            workers = GaugeMetricFamily("synsight_campaign_workers", "Workers who submitted a HIT", labels=labels)
            for row in work:
                key = [str(row["campaign_id"]), names.get(row["campaign_id"], "")]
                for name, family in counters.items():
                    family.add_metric(key, row[name] or 0)
                spent.add_metric(key, float(row["spent"] or 0))
                workers.add_metric(key, row["workers"])
            candidates = GaugeMetricFamily(
                "synsight_campaign_candidates", "Decided candidates by state", labels=[*labels, "state"]
            )
            for row in CampaignSynset.objects.values("campaign_id").annotate(
                accepted=Sum("accepted"), rejected=Sum("rejected"), unresolved=Sum("unresolved")
            ):
                for state in ("accepted", "rejected", "unresolved"):
                    key = [str(row["campaign_id"]), names.get(row["campaign_id"], ""), state]
                    candidates.add_metric(key, row[state] or 0)
            since = timezone.now().replace(second=0, microsecond=0) - timezone.timedelta(minutes=4)
            active = GaugeMetricFamily(
                "synsight_campaign_answers_per_minute", "Answers per minute over the last five minutes", labels=labels
            )
            for row in (
                ActivityBucket.objects.filter(span=ActivityBucket.Span.MINUTE, start__gte=since)
                .values("campaign_id")
                .annotate(n=Sum("answers"))
            ):
                active.add_metric([str(row["campaign_id"]), names.get(row["campaign_id"], "")], row["n"] / 5)
            blocked = GaugeMetricFamily("synsight_campaign_blocked_workers", "Workers blocked", labels=labels)
            for row in (
                Qualification.objects.filter(status=Qualification.Status.BLOCKED)
                .values("campaign_id")
                .annotate(n=Count("id"))
            ):
                blocked.add_metric([str(row["campaign_id"]), names.get(row["campaign_id"], "")], row["n"])
            states = GaugeMetricFamily("synsight_campaigns", "Campaigns by state", labels=["state"])
            for row in Campaign.objects.values("state").annotate(n=Count("id")):
                states.add_metric([row["state"]], row["n"])
            yield from counters.values()
            yield from (spent, workers, candidates, active, blocked, states)

    registry = CollectorRegistry()
    registry.register(Collector())
    Gauge("synsight_up", "1 while the app answers", registry=registry).set(1)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
