"""REST for crowd work: next HIT, submit, quiz, profile. Thin: validate, call one service, serialize."""

import time

from django.conf import settings
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors
from annotation.errors import AnnotationError
from annotation.models import Campaign
from annotation.rows import instance_by_id
from annotation.services import hits, quiz


class ServiceError(APIException):
    def __init__(self, error: AnnotationError):
        self.status_code = error.status
        super().__init__(detail=error.message, code=error.code)


def call(service, **kwargs):
    try:
        return service(**kwargs)
    except AnnotationError as error:
        raise ServiceError(error) from None


HitItemSerializer = inline_serializer(
    "HitItem",
    {
        "id": serializers.IntegerField(),
        "thumbnail": serializers.CharField(),
        "medium": serializers.CharField(),
    },
)
HitSerializer = inline_serializer(
    "Hit",
    {
        "id": serializers.IntegerField(),
        "campaign": serializers.IntegerField(),
        "expires_at": serializers.DateTimeField(),
        "synset": serializers.DictField(),
        "examples": serializers.ListField(child=serializers.CharField()),
        "items": HitItemSerializer,
    },
)


class CachedTokenAuthentication(TokenAuthentication):
    """Token authentication that keeps each key's (user, token) per process for TOKEN_CACHE_SECONDS: the
    crowd loop's two requests per HIT then skip the token + user query. A deleted token or a deactivated
    account is refused at most TOKEN_CACHE_SECONDS later (blocking a worker from a campaign is checked
    per request by the scheduler, not here)."""

    TOKEN_CACHE_SECONDS = 30.0
    _cache: dict[str, tuple[float, object, object]] = {}

    def authenticate_credentials(self, key):
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.TOKEN_CACHE_SECONDS:
            return cached[1], cached[2]
        user, token = super().authenticate_credentials(key)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, user, token)
        return user, token


CROWD_LOOP_AUTHENTICATION = [CachedTokenAuthentication, SessionAuthentication]


class CachedTokenScheme(OpenApiAuthenticationExtension):
    """The same ``Authorization: Token <key>`` header in the OpenAPI schema, under its own component name
    (drf-spectacular warns about two classes sharing "tokenAuth", and check --deploy fails on the warning)."""

    target_class = CachedTokenAuthentication
    name = "crowdTokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=self.target.keyword)


def _running_campaign(campaign_id: int) -> Campaign:
    campaign = instance_by_id(Campaign, campaign_id)
    if campaign is None:
        raise Http404("No Campaign matches the given query.")
    return campaign


class NextHitApi(APIView):
    """Lease the next HIT of a campaign (or get the open one). 204 when there is no work for you: with a
    Retry-After header (seconds) when some may come soon — the last images are leased to others or awaiting
    consensus — and without one when nothing is left for you."""

    authentication_classes = CROWD_LOOP_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    throttle_scope = "next"

    @extend_schema(
        request=None,
        responses={200: HitSerializer, 204: None},
        parameters=[
            OpenApiParameter(
                "Retry-After",
                int,
                OpenApiParameter.HEADER,
                response=[204],
                description="Seconds after which to ask again: no work for you right now, but some may come.",
            )
        ],
    )
    def post(self, request, campaign_id: int):
        campaign = _running_campaign(campaign_id)
        hit = call(hits.hit_next, worker=request.user, campaign=campaign)
        if hit is None:
            response = Response(status=status.HTTP_204_NO_CONTENT)
            if selectors.hit_may_come(worker=request.user, campaign=campaign):
                response["Retry-After"] = str(settings.NEXT_HIT_RETRY_SECONDS)  # not now, but maybe soon
            return response
        return Response(selectors.hit_payload(hit=hit, request=request))


class SubmitHitApi(APIView):
    """Submit answers to every item of your open HIT, once; retries with the same key are safe."""

    authentication_classes = CROWD_LOOP_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    throttle_scope = "submit"

    class HitSubmitInput(serializers.Serializer):
        # The answers' items are checked one by one by the service (hits._parse_answers, a sentence for each
        # fault); a DictField child here validated every value of every answer again, ~3 fields × 24 per submit.
        idempotency_key = serializers.CharField(min_length=8, max_length=64)
        answers = serializers.ListField(max_length=200)

    HitSubmitSchema = inline_serializer(
        "HitSubmitInput",
        {
            "idempotency_key": serializers.CharField(min_length=8, max_length=64),
            "answers": serializers.ListField(
                max_length=200,
                child=inline_serializer(
                    "HitAnswer",
                    {
                        "item": serializers.IntegerField(),
                        "answer": serializers.ChoiceField(["present", "absent", "cant_tell"]),
                        "ms": serializers.IntegerField(min_value=0, required=False),
                    },
                ),
            ),
        },
    )

    @extend_schema(
        request=HitSubmitSchema,
        responses=inline_serializer(
            "SubmitResult",
            {
                "hit": serializers.IntegerField(),
                "answers": serializers.IntegerField(),
                "earned": serializers.CharField(),
            },
        ),
    )
    def post(self, request, hit_id: int):
        payload = self.HitSubmitInput(data=request.data)
        payload.is_valid(raise_exception=True)
        result = call(
            hits.hit_submit,
            worker=request.user,
            hit_id=hit_id,
            answers=payload.validated_data["answers"],
            idempotency_key=payload.validated_data["idempotency_key"],
        )
        code = status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
        return Response({"hit": result.hit_id, "answers": result.answers, "earned": result.earned}, status=code)


class ReleaseHitApi(APIView):
    """Give back your open HIT (the labelling page sends this when it closes): its images return to the queue a
    minute later unless you ask for it again (next HIT) meanwhile. 204 whatever the HIT's state, if it is yours."""

    authentication_classes = CROWD_LOOP_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, hit_id: int):
        call(hits.hit_release, worker=request.user, hit_id=hit_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QuizApi(APIView):
    """Start a qualification quiz (POST) for a campaign."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "Quiz",
            {
                "id": serializers.IntegerField(),
                "campaign": serializers.IntegerField(),
                "pass_mark": serializers.FloatField(),
                "synset": serializers.DictField(
                    allow_null=True, help_text="with a quiz per synset, the synset this quiz qualifies for"
                ),
                "items": serializers.ListField(
                    child=serializers.DictField(), help_text="id, synset, thumbnail and medium URL per gold image"
                ),
            },
        ),
    )
    def post(self, request, campaign_id: int):
        attempt = call(quiz.quiz_start, worker=request.user, campaign=_running_campaign(campaign_id))
        return Response(selectors.quiz_payload(attempt=attempt, request=request), status=status.HTTP_201_CREATED)


class QuizSubmitApi(APIView):
    permission_classes = [IsAuthenticated]

    class QuizAnswersInput(serializers.Serializer):
        answers = serializers.DictField(child=serializers.BooleanField())

    @extend_schema(
        request=QuizAnswersInput,
        responses=inline_serializer(
            "QuizResult",
            {
                "score": serializers.FloatField(),
                "passed": serializers.BooleanField(),
                "retry_in": serializers.IntegerField(help_text="seconds until a new quiz may be started (0: passed)"),
            },
        ),
    )
    def post(self, request, attempt_id: int):
        payload = self.QuizAnswersInput(data=request.data)
        payload.is_valid(raise_exception=True)
        attempt = call(
            quiz.quiz_submit, worker=request.user, attempt_id=attempt_id, answers=payload.validated_data["answers"]
        )
        retry_in = 0 if attempt.passed else attempt.campaign.quiz_retry_seconds
        return Response({"score": attempt.score, "passed": attempt.passed, "retry_in": retry_in})


class ProfileApi(APIView):
    """Your own figures: HITs, answers, gold accuracy, speed, earnings, qualifications."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "WorkerStats",
            {
                "username": serializers.CharField(),
                "hits_done": serializers.IntegerField(),
                "answers": serializers.IntegerField(),
                "gold_answered": serializers.IntegerField(),
                "gold_accuracy": serializers.FloatField(allow_null=True, help_text="share right on gold items"),
                "agreement": serializers.FloatField(allow_null=True, help_text="share agreeing with consensus"),
                "median_seconds_per_image": serializers.FloatField(allow_null=True),
                "earnings": serializers.CharField(help_text="a decimal amount, e.g. '1.20'"),
                "unpaid": serializers.CharField(help_text="of the earnings, what is not approved for payment yet"),
                "adjustments": serializers.ListField(
                    child=serializers.DictField(),
                    help_text="the latest 20 bonuses and corrections, newest first: kind ('bonus' or 'correction'), "
                    "amount (a decimal string, negative for money taken back), note (why) and created",
                ),
                "blocked": serializers.BooleanField(help_text="blocked in at least one campaign"),
                "blocked_reason": serializers.CharField(help_text="the latest block's reason; empty otherwise"),
                "qualifications": serializers.ListField(
                    child=serializers.DictField(),
                    help_text="campaign, campaign_name, status and blocked_reason (this campaign's) per campaign",
                ),
            },
        )
    )
    def get(self, request):
        return Response(selectors.worker_stats(worker=request.user))
