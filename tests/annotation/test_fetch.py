"""annotation.fetch: only public http(s) addresses, bounded in time, size and redirects."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from annotation.fetch import FetchPolicy, fetch
from annotation.imaging import Rejected

LOOPBACK = FetchPolicy(allow_loopback=True, connect_timeout=2, timeout=3)


def refused(url: str, policy: FetchPolicy = LOOPBACK) -> tuple[str, str]:
    with pytest.raises(Rejected) as caught:
        fetch(url, policy)
    return caught.value.code, caught.value.reason


def test_image_is_fetched_from_loopback_when_allowed(image_server, shapes) -> None:
    url = image_server.add("/a.jpg", shapes[0].jpeg)
    assert fetch(url, LOOPBACK) == shapes[0].jpeg


def test_octet_stream_and_missing_content_type_are_fetched(image_server, shapes) -> None:
    url = image_server.add("/raw", shapes[0].jpeg, Content_Type="application/octet-stream")
    assert fetch(url, LOOPBACK) == shapes[0].jpeg


@pytest.mark.parametrize(
    ("url", "code", "reason"),
    [
        ("http://127.0.0.1:9/x.jpg", "blocked_address",
         "127.0.0.1 resolves to 127.0.0.1, a loopback address: refused unless IMAGE_FETCH_ALLOW_LOOPBACK is set "
         "(a local test server)."),
        ("http://localhost:9/x.jpg", "blocked_address", None),
        ("http://10.1.2.3/x.jpg", "blocked_address", None),
        ("http://192.168.0.1/x.jpg", "blocked_address", None),
        ("http://169.254.169.254/latest/meta-data/", "blocked_address", None),  # cloud metadata
        ("http://[::1]/x.jpg", "blocked_address", None),
        ("http://[::ffff:10.0.0.1]/x.jpg", "blocked_address", None),  # IPv4-mapped IPv6
        ("http://[2002:7f00:1::]/x.jpg", "blocked_address",
         "2002:7f00:1:: resolves to 2002:7f00:1::, which carries 127.0.0.1, an internal address (6to4 or Teredo)."),
        ("http://[2002:a00:1::]/x.jpg", "blocked_address", None),  # 6to4 of 10.0.0.1
        ("http://224.0.0.1/x.jpg", "blocked_address", None),
        ("http://0.0.0.0/x.jpg", "blocked_address", None),
        ("ftp://example.org/x.jpg", "bad_url", "Only http and https URLs are fetched, not 'ftp'."),
        ("file:///etc/passwd", "bad_url", "Only http and https URLs are fetched, not 'file'."),
        ("dog photo", "bad_url", "This is not a URL: it does not start with http:// or https://."),
        ("http://user:pw@example.org/x.jpg", "bad_url", "URLs with a user name or password are not fetched."),
        ("http:///x.jpg", "bad_url", "The URL has no host name."),
        ("http://no-such-host.invalid/x.jpg", "unresolvable", "The host name no-such-host.invalid does not resolve."),
    ],
)  # fmt: skip
def test_internal_and_malformed_urls_are_refused_by_default(url: str, code: str, reason: str | None) -> None:
    got_code, got_reason = refused(url, FetchPolicy())
    assert got_code == code
    if reason:
        assert got_reason == reason


def test_redirect_to_an_internal_address_is_refused(image_server) -> None:
    url = image_server.add("/r", b"", status=302, Location="http://10.0.0.1/secret.jpg")
    assert refused(url) == (
        "blocked_address",
        "10.0.0.1 resolves to 10.0.0.1, a private, link-local or otherwise internal address.",
    )


def test_redirects_are_bounded(image_server) -> None:
    for i in range(5):
        image_server.add(f"/hop{i}", b"", status=301, Location=f"/hop{i + 1}")
    assert refused(image_server.base + "/hop0") == ("too_many_redirects", "More than 3 redirects.")


def test_announced_and_actual_size_over_the_cap_are_refused(image_server) -> None:
    policy = FetchPolicy(allow_loopback=True, max_bytes=1000, timeout=3)
    big = image_server.add("/big", b"x" * 5000)
    assert refused(big, policy) == ("too_large", "The server announced 5,000 bytes; the limit is 1,000.")
    liar = image_server.add("/liar", b"x" * 5000, Content_Length="")  # no length announced
    assert refused(liar, policy) == ("too_large", "The download passed the limit of 1,000 bytes.")


def test_html_page_and_error_status_are_refused(image_server) -> None:
    page = image_server.add("/p", b"<html></html>", Content_Type="text/html; charset=utf-8")
    assert refused(page) == ("not_an_image", "The server sent text/html, not an image.")
    gone = image_server.add("/gone", b"", status=410)
    assert refused(gone) == ("http_status", "The server answered HTTP 410.")


def test_unreachable_port_is_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, reason = refused(f"http://127.0.0.1:{port}/x.jpg")
    assert code == "fetch_failed" and reason.startswith("Could not fetch from 127.0.0.1 (")


def test_a_server_that_never_answers_times_out() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    started = time.monotonic()
    code, _ = refused(f"http://127.0.0.1:{server.getsockname()[1]}/slow", FetchPolicy(allow_loopback=True, timeout=1))
    assert code == "fetch_timeout" and time.monotonic() - started < 3
    server.close()
