"""The claim set of a crawl process: article URLs requested and not written yet, on disk."""

from __future__ import annotations

import contextlib
from pathlib import Path

from archive.url_claims import ClaimedUrls


def test_claims_are_added_seen_and_released() -> None:
    claims = ClaimedUrls()
    first, second = "https://a.example/2026/11/20/story", "https://a.example/2026/11/20/other"
    assert first not in claims
    claims.add(first)
    claims.add(first)  # a second claim of the same URL is no error
    claims.add(second)
    assert first in claims
    assert second in claims
    assert len(claims) == 2
    claims.discard([first, "https://a.example/never-claimed"])
    assert first not in claims
    assert second in claims
    assert len(claims) == 1
    claims.close()


def test_two_processes_worth_of_claims_do_not_share_a_file() -> None:
    # Each Archive (one per crawl process and database) has a private claim set.
    one, two = ClaimedUrls(), ClaimedUrls()
    one.add("https://a.example/x")
    assert "https://a.example/x" not in two
    one.close()
    two.close()


def _claim_files() -> dict[str, int]:
    """This process's open files that are claim sets: their paths and sizes."""
    found = {}
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
            target = str(fd.readlink())
            if "news-claimed-urls-" in target:
                found[target] = fd.stat().st_size
    return found


def test_the_claims_wait_in_a_file_of_their_own_that_goes_with_the_connection() -> None:
    """On disk, not in memory (the installed SQLite keeps its own temporary databases in memory),
    and unlinked from the start: nothing is left behind, even by a killed process."""
    before = _claim_files()
    claims = ClaimedUrls()
    for number in range(20_000):
        claims.add(f"https://a.example/2026/12/07/story-number-{number}")
    [(path, size)] = [(path, size) for path, size in _claim_files().items() if path not in before]
    assert path.endswith("(deleted)")
    assert size > 1_000_000  # 20,000 URLs of some 45 bytes each, in the file
    claims.close()
    assert path not in _claim_files()
