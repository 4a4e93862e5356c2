"""The near-duplicate index on its own: signatures, the LSH parameters, lookups and deletes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from datasketch import MinHashLSH
from sqlite_utils import Database

import archive.near_duplicates as nd
from archive.near_duplicates import NearDuplicateIndex, signature, similarities, similarity
from archive.schema import open_db

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


def test_similarities_at_once_equal_the_pairwise_ones() -> None:
    words = STORY.split()
    others = [signature(" ".join(words[cut:] + words[:cut])) for cut in range(0, len(words), 7)]
    others.append(signature("A bakery chain will open six new shops across the region before the winter."))
    mine = signature(STORY)
    assert similarities(mine, others) == [similarity(mine, other) for other in others]
    assert similarities(mine, []) == []


def _article(db: Database, url: str) -> None:
    db["articles"].insert({"url": url, "source": "a", "first_seen_at": "t", "last_seen_at": "t"})


def test_index_finds_stored_and_pending_matches_and_forgets_deleted_ones(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    index = NearDuplicateIndex(db)
    original = signature(STORY)
    index.add("https://a.example/story", original)
    assert [url for url, _ in index.matches(signature(STORY + " Updated."))] == ["https://a.example/story"]  # pending
    _article(db, "https://a.example/story")
    with db.atomic():
        index.write({"https://a.example/story"})
    assert index.pending == {}
    assert index.pending_signatures == {}
    assert db["signature_bands"].count == nd.bands()[0]
    assert [url for url, _ in NearDuplicateIndex(db).matches(original)] == ["https://a.example/story"]  # stored
    assert index.matches(original, exclude="https://a.example/story") == []
    index.delete_stored(["https://a.example/story"])
    assert db["signature_bands"].count == 0
    assert db["article_signatures"].count == 0
    assert index.matches(original) == []


def test_an_update_replaces_the_signature_and_its_buckets(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    index = NearDuplicateIndex(db)
    other = "A bakery chain will open six new shops across the region before the winter market season begins."
    _article(db, "https://a.example/story")
    index.add("https://a.example/story", signature(STORY))
    index.write({"https://a.example/story"})
    index.add("https://a.example/story", signature(other))
    index.write({"https://a.example/story"})
    assert db["article_signatures"].count == 1
    assert db["signature_bands"].count == nd.bands()[0]
    assert index.matches(signature(STORY)) == []
    assert [url for url, _ in index.matches(signature(other))] == ["https://a.example/story"]


@pytest.mark.parametrize("chunk", [7, 37, 20_000])  # band rows moved a statement at a time
def test_full_levels_move_down_in_key_order_and_every_article_stays_findable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(nd, "LEVEL_CAPS", (3, 9))  # articles per level before it is merged down
    monkeypatch.setattr(nd, "MERGE_CHUNK", chunk)
    db = open_db(tmp_path / "news.db")
    index = NearDuplicateIndex(db)
    stories = [f"{STORY} Story number {n} has its own closing line about item {n}." for n in range(14)]
    levels_seen = []
    for n, story in enumerate(stories):
        _article(db, f"https://a.example/{n}")
        index.add(f"https://a.example/{n}", signature(story))
        with db.atomic():
            index.write({f"https://a.example/{n}"})
        levels_seen.append(dict(db.execute("SELECT level, count(*) FROM signature_bands GROUP BY level").fetchall()))
    count = nd.bands()[0]
    assert levels_seen[1] == {0: 2 * count}
    assert levels_seen[2] == {1: 3 * count}  # level 0 reached its cap: moved down whole
    assert levels_seen[8] == {2: 9 * count}  # level 1 reached its cap in turn
    assert levels_seen[13] == {0: 2 * count, 1: 3 * count, 2: 9 * count}
    for n, story in enumerate(stories):
        assert f"https://a.example/{n}" in [url for url, _ in index.matches(signature(story))]
    index.delete_stored([f"https://a.example/{n}" for n in (0, 9, 13)])  # one on each level
    assert db["signature_bands"].count == 11 * count
    assert "https://a.example/0" not in [url for url, _ in index.matches(signature(stories[0]))]


def test_an_archive_with_the_old_url_keyed_band_rows_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    db = open_db(path)
    sig = signature(STORY)
    with db.atomic():  # the tables as the version before index_near_duplicates_in_levels wrote them
        _article(db, "https://a.example/story")
        db.execute("DROP TABLE signature_bands")
        db.execute("DROP TABLE article_signatures")
        db["article_signatures"].create({"url": str, "signature": bytes}, pk="url")
        db["signature_bands"].create({"band": int, "bucket": int, "url": str})
        db["article_signatures"].insert({"url": "https://a.example/story", "signature": sig})
        db["signature_bands"].insert_all(
            {"band": band, "bucket": bucket, "url": "https://a.example/story"} for band, bucket in nd.band_buckets(sig)
        )
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'index_near_duplicates_in_levels'")
    db.close()
    db = open_db(path)
    assert db["signature_bands"].columns_dict == {"level": int, "bucket": int, "signature_id": int}
    assert db.execute("SELECT DISTINCT level FROM signature_bands").fetchall() == [(nd.LEVELS[-1],)]
    assert db["signature_bands"].count == nd.bands()[0]
    assert [url for url, _ in NearDuplicateIndex(db).matches(signature(STORY + " Updated."))] == [
        "https://a.example/story"
    ]


def test_band_rows_are_given_in_key_order_from_many_scratch_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rebuild's rows sorted outside SQLite: every row once, in (bucket, id) order, as SQLite
    orders signed integers, across parts that each hold a range of buckets."""
    from archive import band_rows

    monkeypatch.setattr(band_rows, "ROWS_PER_PART", 500)  # 300 signatures: 23 parts
    rng = random.Random(7)
    signatures = [(sig_id, rng.randbytes(nd.NUM_PERM * 4)) for sig_id in range(1, 301)]
    rows = list(band_rows.band_rows_in_order(iter(signatures), len(signatures)))
    expected = sorted((bucket, sig_id) for sig_id, sig in signatures for _, bucket in nd.band_buckets(sig))
    assert rows == expected
    assert len(rows) == 300 * nd.bands()[0]
    assert rows[0][0] < 0 < rows[-1][0]  # signed buckets, the negative ones first


def test_signature_similarity_estimates_the_jaccard_similarity_of_shingles() -> None:
    words = STORY.split()
    for cut in (10, 25, 40):
        other = " ".join([*words[cut:], "Later", "the", "council", "met", "again", "to", "agree", "a", "budget."])
        mine, theirs = set(nd.shingle_hashes(STORY).tolist()), set(nd.shingle_hashes(other).tolist())
        jaccard = len(mine & theirs) / len(mine | theirs)
        assert abs(similarity(signature(STORY), signature(other)) - jaccard) < 0.15, cut


def test_stored_signatures_are_computed_again_from_the_stored_bodies(tmp_path: Path) -> None:
    from datasketch import MinHash

    path = tmp_path / "news.db"
    db = open_db(path)
    index = NearDuplicateIndex(db)
    db["articles"].insert(
        {"url": "https://a.example/story", "source": "a", "text": STORY, "first_seen_at": "t", "last_seen_at": "t"}
    )
    old = MinHash(num_perm=nd.NUM_PERM, seed=1)  # the signature as the version before computed it
    old.update_batch([" ".join(STORY.casefold().split()[i : i + 5]).encode() for i in range(40)])
    index.add("https://a.example/story", old.hashvalues.astype("uint32").tobytes())
    with db.atomic():
        index.write({"https://a.example/story"})
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'resign_bodies_with_numpy_minhash'")
    assert NearDuplicateIndex(db).matches(signature(STORY)) == []  # old and new signatures do not compare
    db.close()
    db = open_db(path)
    assert db.execute("SELECT signature FROM article_signatures").fetchone()[0] == signature(STORY)
    assert db["signature_bands"].count == nd.bands()[0]
    assert [url for url, _ in NearDuplicateIndex(db).matches(signature(STORY + " Updated."))] == [
        "https://a.example/story"
    ]
