"""Cloud metadata services stay out of reach, whatever `allow_private` says.

`allow_private` opens loopback and private ranges (a site on the LAN or on this machine); a
link-local address (169.254.169.254, where AWS, GCP, Azure and others serve the machine's
credentials, or fe80::/10) and the other metadata addresses are refused before any connection,
robots.txt included, in one log line.

The end-to-end cases crawl through the fault site playing an HTTP proxy (as in test_security):
every request the crawl sends, to whatever host, arrives there and is logged, so "no request
arrived" means no connection was attempted; host names come from test_security's pretend DNS.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from crawl.fetch_guard import address_refusal
from demo.faults import FaultServer
from scheduler import EXIT_FAILED
from tests.conftest import ROOT
from tests.test_security import StubResolver, guard, refusal

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NEVER = "never fetched, whatever allow_private says"


@pytest.mark.parametrize(
    ("address", "opened"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("192.168.1.20", True),
        ("fc00::1", True),
        ("169.254.169.254", False),  # AWS, GCP, Azure, OpenStack metadata
        ("169.254.0.1", False),
        ("::ffff:169.254.169.254", False),  # the same, IPv4-mapped
        ("fe80::1%eth0", False),
        ("fe80::a9fe:a9fe", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6: a unique local (private) address
        ("100.100.100.200", False),  # Alibaba Cloud metadata
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("100.64.0.1", False),
    ],
)
def test_allow_private_opens_loopback_and_private_addresses_only(address: str, opened: bool) -> None:
    assert address_refusal(address, allow_private=False) is not None
    refused = address_refusal(address, allow_private=True)
    assert (refused is None) == opened, refused


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://metadata.news.example/", "metadata.news.example resolves to 169.254.169.254, which is a link-local"),
        (
            "http://metadata6.news.example/",
            "metadata6.news.example resolves to fd00:ec2::254, which is a cloud metadata",
        ),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ],
)
def test_metadata_addresses_are_refused_with_allow_private(url: str, expected: str) -> None:
    reason = refusal(guard(allow_private=True, resolve=StubResolver()), url)
    assert reason is not None
    assert reason.startswith(f"refused: {expected}")
    assert NEVER in reason
    assert "set allow_private" not in reason  # it would not help


def test_a_lan_name_is_opened_by_allow_private() -> None:
    assert refusal(guard(allow_private=True), "http://lan.news.example/") is None
    assert "is a private address; set allow_private = true" in (refusal(guard(), "http://lan.news.example/") or "")


# --- end to end: no connection at all -------------------------------------------------------------


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    site = FaultServer().start()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{site.server_address[1]}")
    monkeypatch.setenv("no_proxy", "")
    yield site
    site.stop()


def crawl_url(url: str, db: Path) -> subprocess.CompletedProcess[str]:
    """`scheduler.py crawl --url URL --allow-private`, host names resolved by the pretend DNS."""
    command = [sys.executable, "scheduler.py", "crawl", "--url", url, "--allow-private", "--db", str(db)]
    command += ["-s", "NEWS_RESOLVER=tests.test_security.pretend_dns", "-s", "RETRY_TIMES=0"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)


def test_a_name_resolving_to_the_metadata_service_is_never_connected_to(proxy: FaultServer, tmp_path: Path) -> None:
    result = crawl_url("http://metadata.news.example/latest/meta-data/", tmp_path / "news.db")
    assert proxy.requests == []  # not the page, not robots.txt
    reason = (
        "refused: metadata.news.example resolves to 169.254.169.254, which is a link-local address "
        f"(where cloud metadata services answer), {NEVER}"
    )
    assert result.returncode == EXIT_FAILED
    assert result.stdout.splitlines()[0] == (
        f"adhoc_metadata_news_example: failed - nothing came of it: {reason}; 1 failures (0 requests)"
    )
    refusals = [line for line in result.stderr.splitlines() if "169.254.169.254" in line]
    assert len(refusals) == 1  # one line for the one refused request
    assert refusals[0].endswith(f"WARNING: failure [fetch] http://metadata.news.example/latest/meta-data/: {reason}")
    assert "Traceback" not in result.stderr


def test_the_same_crawl_of_a_lan_name_does_connect(proxy: FaultServer, tmp_path: Path) -> None:
    """The control: through the same proxy, a private address that allow_private opens is fetched,
    robots.txt first, so the empty request log above means the guard stopped the crawl."""
    crawl_url("http://lan.news.example/", tmp_path / "news.db")
    assert [(r.host, r.path.split("lan.news.example", 1)[-1]) for r in proxy.requests][:1] == [
        ("lan.news.example", "/robots.txt")
    ]
