"""A real small filesystem for the tests of a full disk: writes past its size meet ENOSPC as on a full disk."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_filesystem(root: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "64k") mounted on the new folder ``root`` for the block; the test is skipped, with
    the reason, where mounting is not allowed (it needs root; CI runs as root)."""
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root: {mounted.stderr.decode().strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)
