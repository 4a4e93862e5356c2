"""FetchGuardMiddleware: what the crawl refuses to fetch.

Only http and https are fetched, no private or loopback address unless the source sets
``allow_private``, and never a link-local, cloud metadata or other non-public address, judged on
the address the host name resolves to, for every request (redirects and robots.txt included).

A refusal raises IgnoreRequest with a one-line reason; the spider's errback records it in
``failures`` (stage ``fetch``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy import Request
    from scrapy.crawler import Crawler


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolve(host: str) -> list[str]:
    """Every address the system resolver gives for `host` (what the download will connect to)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def address_kind(address: str) -> str | None:
    """Why an address is not a public internet address ("loopback", "private", ...), or None.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(str(embedded))
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


# Addresses of cloud metadata services outside the link-local ranges (refused as link-local
# anyway): AWS's IPv6 service addresses (fd00:ec2::254, its DNS and NTP next to it) and Alibaba
# Cloud's 100.100.100.200.
CLOUD_METADATA = (ipaddress.ip_network("fd00:ec2::/64"), ipaddress.ip_network("100.100.100.200/32"))
# What allow_private opens: sites on a LAN or on this machine, nothing else that is not public.
OPENED_BY_ALLOW_PRIVATE = frozenset({"loopback", "private"})


def is_cloud_metadata(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return any(ip.version == network.version and ip in network for network in CLOUD_METADATA)


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why a request to `address` is refused ("a loopback address; set allow_private ..."), or None."""
    if is_cloud_metadata(address):
        return "a cloud metadata address, never fetched, whatever allow_private says"
    kind = address_kind(address)
    if kind is None or (allow_private and kind in OPENED_BY_ALLOW_PRIVATE):
        return None
    if kind in OPENED_BY_ALLOW_PRIVATE:
        return f"a {kind} address; set allow_private = true on the source to crawl it"
    if kind == "link-local":
        return "a link-local address (where cloud metadata services answer), never fetched, whatever allow_private says"
    return f"a {kind} address, never fetched (allow_private opens loopback and private addresses only)"


class FetchGuardMiddleware:
    """Refuses what a crawler must never fetch, before anything is sent.

    - Only ``http`` and ``https``: no ``file:``, ``ftp:``, ``data:`` or ``s3:`` URL, whether it
      came from the sources file, a page, a feed, a sitemap, robots.txt or a redirect.
    - No private or loopback address, unless the source sets ``allow_private = true``
      (``--allow-private`` for ``crawl --url``), for sites on a LAN or this machine.
    - Never a link-local address (169.254.0.0/16, fe80::/10: where cloud metadata services
      answer, with the machine's credentials), another cloud metadata address, or any other
      non-public one (multicast, 0.0.0.0, reserved), whatever ``allow_private`` says.

    The host name is resolved and every address it resolves to is checked, so ``localhost``,
    ``127.1``, ``2130706433`` or a public-looking name pointing inward are refused alike.
    Redirects come back through here, so a public page redirecting inward is refused too.

    A host is resolved once per crawl (in a thread; the reactor never waits on DNS). The
    download resolves it again when it connects, so a name whose DNS answer changes in
    between (DNS rebinding) is not fully covered; a proxy that enforces the rule is.
    """

    def __init__(self, crawler: Crawler, resolve: Callable[[str], Sequence[str]] = system_resolve) -> None:
        self.crawler = crawler
        self.resolve = resolve
        self.addresses: dict[str, Sequence[str] | str] = {}  # host -> addresses, or why it failed

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchGuardMiddleware:
        return cls(crawler, load_object(crawler.settings.get("NEWS_RESOLVER")))

    async def process_request(self, request: Request) -> None:
        # Must either return None (fetch it) or raise IgnoreRequest (the errback records why).
        reason = await self.refusal(request.url)
        if reason is not None:
            self.crawler.stats.inc_value("news/requests/refused")
            raise IgnoreRequest(reason)

    async def refusal(self, url: str) -> str | None:
        """Why `url` must not be fetched, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"refused: only http and https URLs are fetched, not {parts.scheme or 'relative'}:"
        host = (parts.hostname or "").rstrip(".")
        if not host:
            return "refused: the URL has no host"
        # Resolved with allow_private too: a name pointing at a metadata service is refused
        # before any connection, robots.txt included.
        addresses = await self._addresses(host)
        if isinstance(addresses, str):
            return f"refused: cannot resolve {host} ({addresses})"
        for address in addresses:
            if why := address_refusal(address, allow_private=self.allow_private):
                shown = host if host == address else f"{host} resolves to {address}, which"
                return f"refused: {shown} is {why}"
        return None

    @property
    def allow_private(self) -> bool:
        source = getattr(self.crawler.spider, "source", None)
        return bool(getattr(source, "allow_private", False))

    async def _addresses(self, host: str) -> Sequence[str] | str:
        if host not in self.addresses:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                try:
                    self.addresses[host] = await asyncio.to_thread(self.resolve, host)
                except OSError as exc:
                    self.addresses[host] = str(exc)
            else:
                self.addresses[host] = [host]
        return self.addresses[host]
