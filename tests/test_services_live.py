"""The configured cache and database are the real services: Redis and PostgreSQL under CI."""

import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection


def test_cache_round_trip_through_the_configured_backend():
    key = f"synsight-test-{uuid.uuid4()}"

    cache.set(key, {"answer": 42}, timeout=30)

    assert cache.get(key) == {"answer": 42}
    cache.delete(key)
    if settings.REDIS_URL:
        import redis

        assert redis.Redis.from_url(settings.REDIS_URL).ping() is True


@pytest.mark.django_db
def test_database_is_the_configured_engine():
    expected = "postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"

    assert connection.vendor == expected
