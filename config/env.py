"""Typed readers for settings that come from the environment.

Every reader fails with ``ImproperlyConfigured`` and a sentence that names the variable, so a typo in a
deployment stops the process at start-up instead of surfacing later as a confusing error.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no, on/off); got {value!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def env_database(name: str, default_sqlite: Path) -> dict:
    """A DATABASES entry from a URL (postgres://, sqlite:///); SQLite in the data folder when unset."""
    url = os.environ.get(name)
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(default_sqlite),
            # WAL lets the dev server read while a Celery task writes; IMMEDIATE transactions make
            # writers queue on the lock instead of failing half-way with "database is locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name} must be a postgres://user@host:port/dbname or sqlite:///path URL; got {url!r}."
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as error:  # django-environ raises several types for malformed URLs
        raise ImproperlyConfigured(f"{name} is not a valid database URL ({error}); got {url!r}.") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} must name a database, as in postgres://user@host:5432/dbname.")
    config.setdefault("CONN_MAX_AGE", 60)
    # No health check: it is a "SELECT 1" round trip at the start of every request (about 1.5 ms of CPU per
    # request between Django and PostgreSQL, benchmarks/hit_cpu.py). A connection that died meanwhile (a
    # restarted database) fails that one request with a 503 and a sentence (config/api_errors.py), and Django
    # closes it at the end of the request, so the retry gets a fresh one.
    config["CONN_HEALTH_CHECKS"] = False
    if scheme != "sqlite":
        # Server-side binding with prepared statements: psycopg prepares a statement the fifth time a connection
        # runs it, and PostgreSQL then skips parsing and planning it. Django's default (client-side binding,
        # prepare_threshold None) planned every statement every time: planning was ~60% of the server time of
        # the crowd loop's small statements. benchmarks/hit_cpu.py: PostgreSQL CPU per HIT 30.2 -> 24.6 ms.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("server_side_binding", True)
        options.setdefault("prepare_threshold", 5)
    return config


def env_redis_url(name: str) -> str | None:
    url = os.environ.get(name)
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"{name} must be a redis://host:port/db URL; got {url!r}.")
    return url
