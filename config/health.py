"""``GET /healthz``: whether this app server can reach what it needs, for a load balancer or an orchestrator's
probe. 200 with ``{"status": "ok", ...}`` when the database answers a query and the cache (Redis, when
configured) a round trip; else 503 with the failing part named and a sentence. No authentication, nothing
private in the answer, never cached, and exempt from the HTTPS redirect (settings.SECURE_REDIRECT_EXEMPT): a
probe talks plain HTTP to the app server itself. The Celery broker is not checked here (it is the same Redis
unless CELERY_BROKER_URL says otherwise), nor are the Celery workers, which a probe of the web tier cannot
restart anyway."""

import logging
import secrets

import redis.exceptions
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError as error:
        logger.warning("Health check: the database did not answer (%s).", error)
        return False


def _cache() -> bool:
    key, value = "healthz:probe", secrets.randbits(30)
    try:
        cache.set(key, value, 10)
        return cache.get(key) == value
    except (redis.exceptions.RedisError, OSError) as error:
        logger.warning("Health check: the cache did not answer (%s).", error)
        return False


@never_cache
@require_safe
def healthz(request):
    checks = {"database": _database(), "cache": _cache()}
    failing = [name for name, ok in checks.items() if not ok]
    body = {
        "status": "unavailable" if failing else "ok",
        **{k: "ok" if v else "unavailable" for k, v in checks.items()},
    }
    if failing:
        body["detail"] = f"This server cannot reach its {' and its '.join(failing)}."
    return JsonResponse(body, status=503 if failing else 200)
