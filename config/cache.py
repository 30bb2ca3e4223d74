"""Django's Redis cache with one client object per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` around its pool for every cache call, and redis-py's
constructor copies its table of ~150 response callbacks each time: on the crowd loop's hot path (the API
throttle reads and writes the cache on every request) that was about half a millisecond per request for
nothing. A client is stateless apart from its pool and is thread-safe, so one per pool does the same work.

``clear()`` deletes this installation's keys (those under its ``KEY_PREFIX``) instead of Django's ``FLUSHDB``:
the Celery broker shares the cache's Redis database by default, and flushing it dropped every queued task —
and, under the test suite's parallel workers, every other worker's rate-limit counters.
"""

import re
import secrets

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ReusingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def clear(self):
        client = self._cache.get_client(write=True)
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.key_prefix) + ":*"
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        return True


# Compare-and-delete in one step on the server: a lock's holder whose lock expired (it ran longer than the
# lock's timeout) must not delete the lock another process has taken since.
_RELEASE_IF_HELD = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def lock_token() -> int:
    """A random value for cache.add(key, token, timeout) that identifies the lock's holder (an int: Django's
    Redis serializer stores ints as their digits, which the release script compares)."""
    return secrets.randbits(62)


def lock_release(key: str, token: int) -> bool:
    """Delete the lock ``key`` if it still holds ``token`` (taken with cache.add); True if it was deleted.
    Atomic on Redis; on other cache backends (one process: the embedded default) a read then a delete."""
    cache = caches["default"]
    if not isinstance(cache, ReusingRedisCache):
        return cache.get(key) == token and bool(cache.delete(key))
    client = cache._cache.get_client(key, write=True)
    return bool(client.eval(_RELEASE_IF_HELD, 1, cache.make_and_validate_key(key), str(token)))
