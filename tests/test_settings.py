"""Settings come from the environment; a bad value stops start-up with a sentence naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.CACHES['default']['BACKEND'], s.DEBUG)"
)
OURS = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "LOG_LEVEL", "S3_BUCKET"}


def start(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in OURS}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", SYNSIGHT_DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_no_variables_means_sqlite_eager_celery_and_local_cache(tmp_path):
    result = start(tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",
    ]


def test_database_and_redis_urls_select_postgres_and_redis(tmp_path):
    result = start(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", REDIS_URL="redis://127.0.0.1:6379/0"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "False",
        "config.cache.ReusingRedisCache",
        "True",
    ]


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"DEBUG": "false"}, "SECRET_KEY must be set when DEBUG is off."),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL must be a postgres://"),
        ({"DATABASE_URL": "postgres://127.0.0.1:5432"}, "DATABASE_URL must name a database"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must be a redis://host:port/db URL"),
        ({"CELERY_TASK_ALWAYS_EAGER": "sometimes"}, "CELERY_TASK_ALWAYS_EAGER must be true or false"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ],
)
def test_invalid_value_stops_startup_naming_the_variable(tmp_path, env, sentence):
    result = start(tmp_path, **env)

    assert result.returncode != 0
    assert sentence in result.stderr


def test_production_mode_with_secret_starts(tmp_path):
    result = start(tmp_path, DEBUG="false", SECRET_KEY="x" * 50)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "False"
