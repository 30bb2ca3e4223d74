"""Settings come from the environment; a bad value stops start-up with a sentence naming the variable."""

import json
import os
import re
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


def environment(tmp_path, **env) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in OURS}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", SYNSIGHT_DATA_DIR=str(tmp_path), **env)
    return clean


def start(tmp_path, probe=PROBE, **env):
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=environment(tmp_path, **env), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_no_variables_means_sqlite_eager_celery_and_local_cache(tmp_path):
    result = start(tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",
    ]


def test_eager_tasks_run_without_a_broker_warning(tmp_path):
    # Celery serialises an eager task's arguments through a producer of the in-memory broker; a URL without a
    # host made kombu log "No hostname was supplied" in the middle of `make demo`'s output.
    probe = (
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "@app.task(name='ping')\n"
        "def ping(): return 'pong'\n"
        "print(ping.apply_async(countdown=5).get())"
    )
    result = start(tmp_path, probe=probe)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pong"]  # ran here, at once
    assert "WARNING" not in result.stderr, result.stderr


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


PAGE_PROBE = (
    "import django; django.setup(); from django.test import Client; "
    "r = Client(raise_request_exception=False).get('/accounts/login/', secure=True); "
    "print(r.status_code); print(r.content.decode())"
)


def test_production_static_files_collect_and_pages_link_their_hashed_names(tmp_path):
    """DEBUG off serves static files from collectstatic's manifest: without it every page is a 500, and the
    manifest storage follows Chart.js's sourceMappingURL, so `make vendor` must bring the map along."""
    assert (ROOT / "frontend/static/vendor/chart.umd.min.js").exists(), "run `make vendor` first"
    production = {"DEBUG": "false", "SECRET_KEY": "x" * 50}

    before = start(tmp_path, PAGE_PROBE, **production)
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, capture_output=True,
        text=True, timeout=300, env=environment(tmp_path, **production),
    )  # fmt: skip
    after = start(tmp_path, PAGE_PROBE, **production)

    assert before.stdout.split()[:1] == ["500"]
    assert collected.returncode == 0, collected.stderr[-2000:]
    manifest = json.loads((tmp_path / "staticfiles" / "staticfiles.json").read_text())["paths"]
    assert re.fullmatch(r"vendor/chart\.umd\.min\.[0-9a-f]{12}\.js", manifest["vendor/chart.umd.min.js"])
    assert after.stdout.split()[:1] == ["200"], after.stderr[-2000:]
    assert re.search(r'href="/static/frontend/site\.[0-9a-f]{12}\.css"', after.stdout)


def test_log_lines_say_when_how_bad_and_where(tmp_path):
    probe = (
        "import django, logging; django.setup(); logging.getLogger('django.request').warning('Unauthorized: /metrics')"
    )

    result = start(tmp_path, probe)

    assert result.returncode == 0, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING \[\d+\] django.request: Unauthorized: /metrics", line
    )
