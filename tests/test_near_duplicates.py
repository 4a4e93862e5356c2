"""The near-duplicate index on its own: signatures, the LSH parameters, lookups and deletes."""

from __future__ import annotations

from pathlib import Path

from datasketch import MinHashLSH

import near_duplicates as nd
from near_duplicates import NearDuplicateIndex, signature, similarity
from schema import open_db

STORY = (
    "The harbour council approved a new rock breakwater on Monday after a winter of storms "
    "flooded the quay twice, and work on the 400 metre barrier is due to start in the spring. "
    "Engineers said the design had been tested against a once in a century storm surge. "
    "Fishermen welcomed the decision but asked for the slipway to stay open during the works."
)


def test_shipped_band_parameters_are_datasketchs_choice() -> None:
    lsh = MinHashLSH(threshold=nd.THRESHOLD, num_perm=nd.NUM_PERM)
    assert nd.KNOWN_BANDS[nd.THRESHOLD, nd.NUM_PERM] == (lsh.b, lsh.r) == nd.bands()


def test_similar_texts_have_similar_signatures() -> None:
    edited = STORY.replace("Monday", "Tuesday").replace("spring", "summer")
    other = "A bakery chain will open six new shops across the region before the winter market season begins."
    assert similarity(signature(STORY), signature(STORY)) == 1.0
    assert similarity(signature(STORY), signature(edited)) > nd.THRESHOLD
    assert similarity(signature(STORY), signature(other)) < 0.05


def test_index_finds_stored_and_pending_matches_and_forgets_deleted_ones(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    index = NearDuplicateIndex(db)
    original = signature(STORY)
    index.add("https://a.example/story", original)
    assert [url for url, _ in index.matches(signature(STORY + " Updated."))] == ["https://a.example/story"]  # pending
    signatures, bands = index.take_rows({"https://a.example/story"})
    db["articles"].insert({"url": "https://a.example/story", "source": "a", "first_seen_at": "t", "last_seen_at": "t"})
    db["article_signatures"].insert_all(signatures)
    db["signature_bands"].insert_all(bands)
    assert len(bands) == nd.bands()[0]
    assert [url for url, _ in index.matches(original)] == ["https://a.example/story"]  # stored
    assert index.matches(original, exclude="https://a.example/story") == []
    index.delete_stored(["https://a.example/story"])
    assert db["signature_bands"].count == 0
