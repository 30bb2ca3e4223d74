"""Accounts over REST: API tokens, and workers arriving from an external marketplace."""

import hashlib
import hmac

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.throttling import WindowRateThrottle
from workers.services import external_worker_account


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for an API token (``Authorization: Token <key>``)."""

    throttle_classes = [WindowRateThrottle]  # ObtainAuthToken switches throttling off by default
    throttle_scope = "auth"


class ExternalWorkerApi(APIView):
    """A marketplace hands over a worker: ``signature`` is the hex HMAC-SHA256 of ``external_id`` under the
    shared secret EXTERNAL_WORKER_SECRET. Answers an API token for that worker's one account."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_scope = "auth"

    class ExternalWorkerInput(serializers.Serializer):
        external_id = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,120}$")
        signature = serializers.RegexField(r"^[0-9a-f]{64}$")

    @extend_schema(
        request=ExternalWorkerInput,
        responses=inline_serializer(
            "ExternalWorker", {"token": serializers.CharField(), "username": serializers.CharField()}
        ),
    )
    def post(self, request):
        payload = self.ExternalWorkerInput(data=request.data)
        payload.is_valid(raise_exception=True)
        secret = settings.EXTERNAL_WORKER_SECRET
        if not secret:
            raise PermissionDenied("External worker sign-in is not enabled on this server.")
        expected = hmac.new(secret.encode(), payload.validated_data["external_id"].encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, payload.validated_data["signature"]):
            raise PermissionDenied("The signature does not match this external worker id.")
        user = external_worker_account(external_id=payload.validated_data["external_id"])
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "username": user.username})
