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


def test_clearing_the_redis_cache_leaves_other_prefixes_and_the_broker_queue(tmp_path):
    import redis

    from config.cache import ReusingRedisCache

    url = settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    prefix = f"clear-test-{uuid.uuid4().hex}"
    ours = ReusingRedisCache(url, {"KEY_PREFIX": f"{prefix}[a]*"})  # its glob characters match literally
    theirs = ReusingRedisCache(url, {"KEY_PREFIX": f"{prefix}[a]*x"})
    queue = f"{prefix}-celery-queue"
    raw = redis.Redis.from_url(url)
    ours.set_many({f"k{i}": i for i in range(1200)}, timeout=60)  # more than one SCAN / UNLINK batch
    theirs.set("k1", "kept", timeout=60)
    raw.lpush(queue, "a queued task")

    try:
        assert ours.clear() is True

        assert ours.get_many([f"k{i}" for i in range(1200)]) == {}
        assert theirs.get("k1") == "kept"
        assert raw.lrange(queue, 0, -1) == [b"a queued task"]
    finally:
        theirs.clear()
        raw.delete(queue)
