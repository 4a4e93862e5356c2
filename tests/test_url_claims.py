"""The claim set of a crawl process: article URLs requested and not written yet, on disk."""

from __future__ import annotations

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
