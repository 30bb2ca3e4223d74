"""A session engine whose save meets a database outage: SessionMiddleware saves after the view has answered,
outside ServiceUnavailableMiddleware's reach (tests/reliability/test_outages.py)."""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import OperationalError


class SessionStore(DatabaseSessionStore):
    def save(self, must_create=False):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
