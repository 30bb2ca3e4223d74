"""The front door: ``make demo`` serves the app and points its simulated crowd at the same address, which a
newcomer whose port 8000 is taken can change (``make demo DEMO_PORT=8102``)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def demo_commands(*args: str) -> str:
    """What ``make demo`` would run (make -n: printed, not run)."""
    done = subprocess.run(["make", "-n", "demo", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_demo_serves_on_port_8000_by_default():
    commands = demo_commands()
    assert "manage.py runserver 127.0.0.1:8000" in commands
    assert "--base-url http://127.0.0.1:8000 " in commands
    assert "setup_demo --url http://127.0.0.1:8000/" in commands


def test_make_demo_serves_the_app_and_its_crowd_on_the_port_asked_for():
    # Port 8000 was written into the Makefile three times: with it taken, the server would not start and the
    # background crowd would knock on whatever held the port.
    commands = demo_commands("DEMO_PORT=8102")
    assert "manage.py runserver 127.0.0.1:8102" in commands
    assert "--base-url http://127.0.0.1:8102 " in commands
    assert "Serving Synsight on http://127.0.0.1:8102/" in commands
    assert "setup_demo --url http://127.0.0.1:8102/" in commands
    assert not re.search(r"\b8000\b", commands)


def test_make_install_brings_the_chart_library_with_its_source_map_and_no_demo():
    # A deployment's `make install`: collectstatic (DEBUG off) follows the script's sourceMappingURL and failed
    # without the map; the demo's accounts and images have no place in production.
    done = subprocess.run(["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "pip install" in done.stdout and "npm ci" in done.stdout
    assert "node_modules/chart.js/dist/chart.umd.min.js.map" in done.stdout
    assert "setup_demo" not in done.stdout and "migrate" not in done.stdout
