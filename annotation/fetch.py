"""Fetch one image URL without letting the URL reach inside our network (SSRF).

Rules, checked for the URL and again for every redirect target:

* ``http`` or ``https`` only, with a host name; no credentials in the URL.
* The host name is resolved once; if *any* of its addresses is private, loopback, link-local, multicast,
  reserved or unspecified (IPv4-mapped IPv6 addresses included), the URL is refused. Loopback alone can be
  allowed (``allow_loopback``) so tests can serve images from 127.0.0.1.
* The connection goes to the checked address itself (the Host header and TLS SNI/certificate check keep
  the name), so a second DNS answer cannot swap in an internal address (DNS rebinding).
* Connect timeout, a read timeout per socket read and a deadline for the whole download; at most
  ``max_redirects`` redirects; a Content-Length or a body over ``max_bytes`` stops the download.
* The response must be 200 with an image content type (or none, or application/octet-stream: many servers
  label images so); whether the bytes really are an image is decided by annotation.imaging afterwards.

Uses urllib3 (already installed with botocore; well kept), which lets us pin the address per connection.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

from annotation.imaging import Rejected

USER_AGENT = "Synsight/0.1 (+image import for dataset building)"
OK_TYPES = ("image/", "application/octet-stream")


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 25 * 2**20
    connect_timeout: float = 5.0
    timeout: float = 30.0  # per read, and for the whole download
    max_redirects: int = 3
    allow_loopback: bool = False


def fetch(url: str, policy: FetchPolicy = FetchPolicy()) -> bytes:
    """The body of ``url``; raises :class:`~annotation.imaging.Rejected` with a reason otherwise."""
    deadline = time.monotonic() + policy.timeout
    for _ in range(policy.max_redirects + 1):
        response = _request(url, policy)
        try:
            if response.status in {301, 302, 303, 307, 308}:
                location = response.headers.get("Location")
                if not location:
                    raise Rejected("fetch_failed", f"The server answered {response.status} without a Location.")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise Rejected("http_status", f"The server answered HTTP {response.status}.")
            return _read_body(response, policy, deadline)
        finally:
            response.release_conn()
            response.close()
    raise Rejected("too_many_redirects", f"More than {policy.max_redirects} redirects.")


def _request(url: str, policy: FetchPolicy) -> urllib3.BaseHTTPResponse:
    parts = urlsplit(url)
    if not parts.scheme:
        raise Rejected("bad_url", "This is not a URL: it does not start with http:// or https://.")
    if parts.scheme not in {"http", "https"}:
        raise Rejected("bad_url", f"Only http and https URLs are fetched, not {parts.scheme!r}.")
    if not parts.hostname:
        raise Rejected("bad_url", "The URL has no host name.")
    if parts.username or parts.password:
        raise Rejected("bad_url", "URLs with a user name or password are not fetched.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Rejected("bad_url", "The URL's port is not a number between 0 and 65535.") from None
    address = _checked_address(parts.hostname, port, policy)
    host_header = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port:
        host_header += f":{parts.port}"
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.timeout)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=parts.hostname, assert_hostname=parts.hostname, cert_reqs="CERT_REQUIRED",
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        return pool.urlopen(
            "GET", path, headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "image/*"},
            redirect=False, preload_content=False, decode_content=True,
        )  # fmt: skip
    except urllib3.exceptions.NewConnectionError as error:  # (a subclass of ConnectTimeoutError)
        raise Rejected("fetch_failed", f"Could not fetch from {parts.hostname} ({_cause(error)}).") from None
    except urllib3.exceptions.TimeoutError:
        raise Rejected("fetch_timeout", f"{parts.hostname} did not answer in time.") from None
    except urllib3.exceptions.HTTPError as error:
        raise Rejected("fetch_failed", f"Could not fetch from {parts.hostname} ({_cause(error)}).") from None


def _checked_address(host: str, port: int, policy: FetchPolicy) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Rejected("unresolvable", f"The host name {host} does not resolve.") from None
    addresses = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        refused = next((a for a in (address, *_embedded(address)) if not _allowed(a, policy)), None)
        if refused is not None:
            if refused != address:
                raise Rejected(
                    "blocked_address",
                    f"{host} resolves to {address}, which carries {refused}, an internal address (6to4 or Teredo).",
                )
            if address.is_loopback:
                raise Rejected(
                    "blocked_address",
                    f"{host} resolves to {address}, a loopback address: refused unless IMAGE_FETCH_ALLOW_LOOPBACK "
                    "is set (a local test server).",
                )
            raise Rejected(
                "blocked_address",
                f"{host} resolves to {address}, a private, link-local or otherwise internal address.",
            )
        addresses.append(str(address))
    return addresses[0]


def _embedded(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 one carries and may reach through a relay (6to4's, Teredo's client), judged too:
    2002:7f00:1:: is 127.0.0.1 by 6to4 (QA)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    return [a for a in (address.sixtofour, address.teredo[1] if address.teredo else None) if a is not None]


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: FetchPolicy) -> bool:
    if address.is_loopback:
        return policy.allow_loopback
    return not (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _read_body(response: urllib3.BaseHTTPResponse, policy: FetchPolicy, deadline: float) -> bytes:
    content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type and not content_type.startswith(OK_TYPES):
        raise Rejected("not_an_image", f"The server sent {content_type}, not an image.")
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > policy.max_bytes:
        raise Rejected("too_large", f"The server announced {int(length):,} bytes; the limit is {policy.max_bytes:,}.")
    body = bytearray()
    try:
        for chunk in response.stream(64 * 1024):
            body += chunk
            if len(body) > policy.max_bytes:
                raise Rejected("too_large", f"The download passed the limit of {policy.max_bytes:,} bytes.")
            if time.monotonic() > deadline:
                raise Rejected("fetch_timeout", f"The download took longer than {policy.timeout:g} s.")
    except urllib3.exceptions.TimeoutError:
        raise Rejected("fetch_timeout", "The server stopped sending before the image was complete.") from None
    except urllib3.exceptions.HTTPError as error:
        raise Rejected("fetch_failed", f"The download broke off ({_cause(error)}).") from None
    return bytes(body)


def _cause(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    return text.split(": ", 1)[-1][:100]
