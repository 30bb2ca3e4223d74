"""Django's Redis cache with one client object per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` around its pool for every cache call, and redis-py's
constructor copies its table of ~150 response callbacks each time: on the crowd loop's hot path (the API
throttle reads and writes the cache on every request) that was about half a millisecond per request for
nothing. A client is stateless apart from its pool and is thread-safe, so one per pool does the same work.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


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
