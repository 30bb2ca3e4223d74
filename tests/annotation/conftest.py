"""Fixtures for the candidate-image tests: a private media folder, named actors, image bytes and a
local HTTP server that serves images on 127.0.0.1."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image as PILImage

from annotation import demo_images as demo
from taxonomy.selectors import synset_get
from workers.roles import Role
from workers.services import account_create

DOG = "n02084071"
CAT = "n02121620"


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Storage goes to a temporary folder; tests list it to prove nothing was left behind."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.IMAGE_IMPORT_WORKERS = 1
    return root


def stored_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def dog(db):
    return synset_get(wnid=DOG)


@pytest.fixture
def cat(db):
    return synset_get(wnid=CAT)


@pytest.fixture
def researcher(db):
    return account_create(username="researcher", password="pw-researcher-1", role=Role.RESEARCHER)


@pytest.fixture
def worker(db):
    return account_create(username="worker", password="pw-worker-1", role=Role.WORKER)


@pytest.fixture
def admin(db):
    return account_create(username="admin", password="pw-admin-1", role=Role.ADMIN)


@pytest.fixture(scope="session")
def shapes() -> list[demo.DemoImage]:
    """Eight distinct photo-like JPEGs (different synsets, so no two are near-duplicates)."""
    return list(demo.generate(seed=11, per_synset=1, synsets=tuple(s.wnid for s in demo.SHAPES[:8])))


def encode(image: PILImage.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decode(data: bytes) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(data))
    image.load()
    return image


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self):
        status, headers, body = self.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
        self.send_response(status)
        for key, value in headers.items():
            if value:  # an empty value leaves the header out (HTTP/1.0: the body ends when the socket closes)
                self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ImageServer:
    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self.routes = _Handler.routes

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, path: str, body: bytes, status: int = 200, **headers: str) -> str:
        headers = {key.replace("_", "-"): value for key, value in headers.items()}
        headers.setdefault("Content-Type", "image/jpeg")
        self.routes[path] = (status, headers, body)
        return self.base + path


@pytest.fixture
def image_server(settings) -> Iterator[ImageServer]:
    settings.IMAGE_FETCH_ALLOW_LOOPBACK = True
    _Handler.routes = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ImageServer(server)
    server.shutdown()
    server.server_close()
