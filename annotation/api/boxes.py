"""REST for box work: next draw / quality / coverage task, and submit. Thin: validate, call one service,
serialize (the same error contract as the verification HITs in api/hits.py)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.hits import call
from annotation.models import Campaign
from annotation.selectors.boxes import box_task_payload
from annotation.services import boxes

MAX_ANSWERS = 100

BoxTaskSerializer = inline_serializer(
    "BoxTask",
    {
        "id": serializers.IntegerField(),
        "kind": serializers.ChoiceField(choices=["draw", "quality", "coverage"]),
        "campaign": serializers.IntegerField(),
        "expires_at": serializers.DateTimeField(),
        "synset": serializers.DictField(),
        "items": serializers.ListField(child=serializers.DictField()),
    },
)


class NextBoxTaskApi(APIView):
    """Lease the next box task of a kind (draw, quality, coverage), or get your open one. 204: no work."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: BoxTaskSerializer, 204: None})
    def post(self, request, campaign_id: int, kind: str):
        campaign = get_object_or_404(Campaign, id=campaign_id)
        task = call(boxes.box_task_next, worker=request.user, campaign=campaign, kind=kind)
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(box_task_payload(task=task))


class SubmitBoxTaskApi(APIView):
    """Submit every item of your open box task once; a retry with the same key is safe.

    Draw answers: ``{"item", "answer": "box" | "no_more" | "not_present" | "skip", "boxes": [[x1, y1, x2, y2]],
    "ms"}`` (one box, whole pixels of the displayed image, x2/y2 exclusive). Quality and coverage answers:
    ``{"item", "answer": "yes" | "no" | "cant_tell", "ms"}``."""

    permission_classes = [IsAuthenticated]

    class BoxSubmitSerializer(serializers.Serializer):
        idempotency_key = serializers.CharField(min_length=8, max_length=64)
        # Items are checked by the service; DictField keeps nested lists (boxes) as sent.
        answers = serializers.ListField(child=serializers.DictField(), max_length=MAX_ANSWERS)

    @extend_schema(
        request=BoxSubmitSerializer,
        responses=inline_serializer(
            "BoxSubmitResult",
            {
                "task": serializers.IntegerField(),
                "kind": serializers.CharField(),
                "answers": serializers.IntegerField(),
                "boxes": serializers.ListField(child=serializers.IntegerField()),
                "earned": serializers.CharField(),
            },
        ),
    )
    def post(self, request, task_id: int):
        payload = self.BoxSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = call(
            boxes.box_task_submit,
            worker=request.user,
            task_id=task_id,
            answers=payload.validated_data["answers"],
            idempotency_key=payload.validated_data["idempotency_key"],
        )
        body = {
            "task": result.task_id,
            "kind": result.kind,
            "answers": result.answers,
            "boxes": result.boxes,
            "earned": result.earned,
        }
        return Response(body, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class ReleaseBoxTaskApi(APIView):
    """Give back your open box task (the box pages send this when they close): its images return to the queue a
    minute later unless you ask for it again meanwhile. 204 whatever the task's state, if it is yours."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, task_id: int):
        call(boxes.box_task_release, worker=request.user, task_id=task_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
