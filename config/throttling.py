"""The API's scoped rate limits, counted in one cache round trip per request.

DRF's ``ScopedRateThrottle`` keeps a list of request times per client: every request reads the list from the
cache, unpickles it, drops the old times, appends one, pickles it and writes it back — two Redis round trips
and a list of up to 240 floats each way for the crowd loop's "next" scope, on every request. This throttle
keeps the same scopes and rates (``DEFAULT_THROTTLE_RATES``, ``throttle_scope`` on the view, per user or per
IP) as a counter per client and scope: the first request of a window starts it (the key expires ``duration``
seconds later), each request adds one, and a request past the rate is refused until the window ends. With
Redis that is ``INCR`` + ``EXPIRE … NX`` + ``TTL`` in one pipeline; any other cache uses ``add`` + ``incr``.

A fixed window lets a client that waited for a window's last second send up to twice the rate within a
rate's duration; the sliding list never did. For throttles meant to stop floods and runaway clients, not to
meter, that is the trade taken for the round trip.
"""

import ipaddress

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import ScopedRateThrottle


def client_ip(request) -> str:
    """The address rate limits count a client by (the API's throttles and django-ratelimit's sign-in and sign-up
    limits alike). Directly served, the connection's REMOTE_ADDR. Behind ``NUM_PROXIES`` proxies, each appending
    the address it saw to X-Forwarded-For, the entry that many from the right: the one the outermost proxy
    wrote. Entries further left come from the client and prove nothing (a fresh one per request would give a
    password guesser a fresh allowance each time); a header short of that many entries gives its leftmost."""
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.NUM_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops:
            candidate = hops[-min(proxies, len(hops))]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass  # not written by a proxy of ours: the connection's address is all we know
    # A connection with no address (gunicorn on a Unix socket) counts as the unspecified one: such clients share
    # a limit, which NUM_PROXIES lifts, instead of every rate-limited request failing.
    return remote or "0.0.0.0"


def _count(key: str, duration: int) -> tuple[int, int]:
    """Add one to the window's counter: (requests in this window so far, seconds until it ends)."""
    client_of = getattr(getattr(cache, "_cache", None), "get_client", None)
    if client_of is not None:  # Django's Redis cache
        redis_key = cache.make_and_validate_key(key)
        pipe = client_of(redis_key, write=True).pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, duration, nx=True)
        pipe.ttl(redis_key)
        count, _, ttl = pipe.execute()
        return int(count), max(int(ttl), 0)
    cache.add(key, 0, duration)
    try:
        return cache.incr(key), duration
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, duration)
        return 1, duration


class WindowRateThrottle(ScopedRateThrottle):
    def get_ident(self, request):
        return client_ip(request)

    def allow_request(self, request, view):
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        count, self.seconds_left = _count(self.key, self.duration)
        return count <= self.num_requests

    def wait(self):
        return max(self.seconds_left, 1)
