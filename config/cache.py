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
