"""Where the platform may send: a webhook URL an admin typed must not reach inside the network.

A hook's URL is data any workflow designer can set, so, unless the operator allows private
targets (``NENTANG_DELIVERY_ALLOW_PRIVATE_TARGETS``, for a receiver on the same network), the
worker refuses a URL whose host resolves to a loopback, private, link-local (cloud metadata),
multicast or otherwise reserved address. Every address the name resolves to is checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class ForbiddenTarget(Exception):
    """The target may not be sent to; retrying will not help."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def check(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenTarget(f"{url!r} is not an http(s) URL with a host")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {parts.hostname}: {exc.strerror}") from exc
    blocked = sorted({str(info[4][0]) for info in found if not _public(str(info[4][0]))})
    if blocked:
        raise ForbiddenTarget(
            f"{parts.hostname} resolves to a non-public address ({', '.join(blocked)}); "
            "the operator must allow private delivery targets to send there")
