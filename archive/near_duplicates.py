"""Near-duplicate detection: MinHash signatures of article bodies and an LSH index kept in SQLite.

The same wire story reaches many sites with other page chrome, small edits and a new headline.
Each body becomes a MinHash signature over word 5-grams; LSH splits it into
bands, and two articles that share any band bucket are candidates, confirmed when their
estimated Jaccard similarity reaches THRESHOLD. Buckets live in the `signature_bands` table,
so the index survives restarts and a lookup is one indexed query, never a scan.

THRESHOLD was chosen with bench/near_duplicates.py (see bench/RESULTS.md).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlite_utils import Database

NUM_PERM = 128
SHINGLE_SIZE = 5
# Measured by bench/near_duplicates.py: at 0.3 precision 1.000 and recall 0.993 of duplicate pairs;
# precision starts to fall at 0.2 (stories that reuse two background paragraphs of another),
# recall falls fast above 0.4 (an edit of 1 word in 20 breaks 1 shingle in 4 at 5-grams).
THRESHOLD = 0.3
_WORD_RE = re.compile(r"\w+")
_SEED = 1  # fixed: signatures stored yesterday must compare with today's


# datasketch's choice of (bands, rows per band) for the shipped threshold, so that the crawl
# process never imports datasketch (and scipy, which it needs to compute the choice).
KNOWN_BANDS = {(0.3, 128): (37, 3)}


@cache
def bands() -> tuple[int, int]:
    """(number of bands, rows per band) that datasketch picks for THRESHOLD and NUM_PERM."""
    if (THRESHOLD, NUM_PERM) in KNOWN_BANDS:
        return KNOWN_BANDS[THRESHOLD, NUM_PERM]
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    return lsh.b, lsh.r


# MinHash by hand in numpy rather than datasketch's MinHash: datasketch hashes each shingle with
# SHA-1 in a Python loop and permutes with a modulo, 1.2 ms per article; this costs 0.5 ms (#8).
# A word is hashed once (CRC-32), a shingle's hash is a polynomial of its words' hashes, and each
# of the NUM_PERM hash functions is a multiply-add-shift, h(x) = (a * x + b mod 2**64) >> 32.
_UINT64 = np.uint64
_SHINGLE_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
    dtype=_UINT64,
)[:SHINGLE_SIZE]
_random = np.random.default_rng(_SEED)
_PERM_A = _random.integers(0, 2**64, NUM_PERM, dtype=_UINT64, endpoint=False) | _UINT64(1)  # odd
_PERM_B = _random.integers(0, 2**64, NUM_PERM, dtype=_UINT64, endpoint=False)
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32).tobytes()


def shingle_hashes(text: str) -> np.ndarray:
    """64-bit hashes of the distinct word SHINGLE_SIZE-grams of the text (its words if fewer)."""
    words = _WORD_RE.findall(text.casefold())
    if not words:
        return np.zeros(0, dtype=_UINT64)
    ids: dict[str, int] = {}
    codes = np.fromiter((ids.setdefault(word, len(ids)) for word in words), dtype=np.intp, count=len(words))
    word_hashes = np.fromiter((zlib.crc32(word.encode()) for word in ids), dtype=_UINT64, count=len(ids))[codes]
    size = min(SHINGLE_SIZE, len(words))
    count = len(words) - size + 1
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        hashes = word_hashes[:count] * _SHINGLE_MULTIPLIERS[0]
        for offset in range(1, size):
            hashes += word_hashes[offset : offset + count] * _SHINGLE_MULTIPLIERS[offset]
    return np.unique(hashes)


def signature(text: str) -> bytes:
    """The body's MinHash signature as bytes (NUM_PERM unsigned 32-bit values)."""
    hashes = shingle_hashes(text)
    if not len(hashes):
        return _EMPTY
    with np.errstate(over="ignore"):
        permuted = (hashes[:, None] * _PERM_A + _PERM_B) >> _UINT64(32)
    return permuted.min(axis=0).astype(np.uint32).tobytes()


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.mean(np.frombuffer(a, dtype=np.uint32) == np.frombuffer(b, dtype=np.uint32)))


def similarities(sig: bytes, others: list[bytes]) -> list[float]:
    """`similarity(sig, other)` for each of `others`, in one numpy operation: a story syndicated
    to a hundred sites has a hundred candidates, one by one about 9 microseconds each."""
    if not others:
        return []
    matrix = np.frombuffer(b"".join(others), dtype=np.uint32).reshape(len(others), -1)
    return [float(score) for score in (matrix == np.frombuffer(sig, dtype=np.uint32)).mean(axis=1)]


@lru_cache(maxsize=1024)
def band_buckets(sig: bytes) -> tuple[tuple[int, int], ...]:
    """(band, bucket) pairs: a bucket is a 64-bit hash of the band number and the band's rows,
    so one indexed `bucket IN (...)` query finds the candidates of every band at once.

    Cached: an article's buckets are looked up (dedupe), remembered, then written (store), and
    37 hashes a time cost more than the lookup itself."""
    count, rows = bands()
    width = rows * 4
    return tuple(
        (
            band,
            int.from_bytes(
                hashlib.blake2b(bytes([band]) + sig[band * width : (band + 1) * width], digest_size=8).digest(),
                "big",
                signed=True,
            ),
        )
        for band in range(count)
    )


def cluster_id_for(url: str) -> int:
    """A cluster is named after the first article put in it: a stable 63-bit id, no counter to share."""
    return int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "big") >> 1


# The band index is a small log-structured merge tree inside one table. New band rows go to level 0,
# which stays small enough that its random inserts touch few pages; when a level outgrows its cap it
# is moved into the next level in one sorted pass, so a big level is rewritten once per merge rather
# than having a page dirtied by nearly every insert. (One random-keyed B-tree took 0.5 ms more per
# article at 30,000 articles, growing with the archive.)
LEVEL_CAPS = (2_000, 40_000)  # in articles; the last level has no cap
LEVELS = tuple(range(len(LEVEL_CAPS) + 1))
MERGE_CHUNK = 20_000  # band rows: 1 MB or so held at a time, against 64 MB for a whole level
_IN_LEVELS = ",".join(str(level) for level in LEVELS)


def move_level_down(db: Database, level: int) -> None:
    """Move a level's band rows into the next level, in key order, MERGE_CHUNK rows a statement.

    One `INSERT ... SELECT` from the table into itself makes SQLite copy every selected row into a
    temporary table first, and the installed SQLite keeps those in memory (archive/sqlite.py): 64 MB
    for a full level 1, a spike in the crawl process's memory (bench/temp_store.py)."""
    while rows := db.execute(
        "SELECT bucket, signature_id FROM signature_bands WHERE level = ? ORDER BY bucket, signature_id LIMIT ?",
        [level, MERGE_CHUNK],
    ).fetchall():
        db.conn.executemany(
            "INSERT INTO signature_bands (level, bucket, signature_id) VALUES (?, ?, ?)",
            [(level + 1, bucket, sig_id) for bucket, sig_id in rows],
        )
        db.execute(
            "DELETE FROM signature_bands WHERE level = ? AND (bucket, signature_id) <= (?, ?)", [level, *rows[-1]]
        )


class NearDuplicateIndex:
    """Lookups and writes on the LSH tables, plus what this process added but has not written."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: dict[int, list[str]] = {}  # bucket -> URLs
        self.pending_signatures: dict[str, bytes] = {}

    def matches(self, sig: bytes, *, exclude: str | None = None) -> list[tuple[str, float]]:
        """Stored articles whose similarity to `sig` reaches THRESHOLD, most similar first."""
        keys = [bucket for _, bucket in band_buckets(sig)]
        candidates = self._stored_candidates(keys)
        for url in {url for key in keys for url in self.pending.get(key, ())}:
            candidates.setdefault(url, self.pending_signatures[url])
        if exclude is not None:
            candidates.pop(exclude, None)
        scores = similarities(sig, list(candidates.values()))
        found = [(url, score) for url, score in zip(candidates, scores, strict=True) if score >= THRESHOLD]
        return sorted(found, key=lambda pair: -pair[1])

    def add(self, url: str, sig: bytes) -> None:
        """Remember a new article's signature; written by `write()` with its batch."""
        self.pending_signatures[url] = sig
        for _, bucket in band_buckets(sig):
            self.pending.setdefault(bucket, []).append(url)

    def write(self, urls: set[str]) -> None:
        """Store the pending signatures of these articles (in the caller's transaction).

        An article stored before (an update) has its old signature and buckets replaced.
        """
        sigs = {url: sig for url, sig in self.pending_signatures.items() if url in urls}
        self._forget_pending(urls)
        self.delete_stored(sigs)
        insert = "INSERT INTO article_signatures (url, signature) VALUES (?, ?)"
        rows = []
        for url, sig in sigs.items():
            sig_id = self.db.conn.execute(insert, [url, sig]).lastrowid
            rows += [(bucket, sig_id) for _, bucket in band_buckets(sig)]
        rows.sort()
        self.db.conn.executemany("INSERT INTO signature_bands (level, bucket, signature_id) VALUES (0, ?, ?)", rows)
        if rows:
            self._merge_full_levels()

    def replace(self, url: str, sig: bytes | None) -> None:
        """A stored article's body changed (re-extraction): index its new signature, or none."""
        self.delete_stored([url])
        if sig is not None:
            self.add(url, sig)
            self.write({url})

    def delete_stored(self, urls: Iterable[str]) -> None:
        """Remove stored articles' signatures and band rows (found through their own buckets)."""
        for url in urls:
            row = self.db.execute("SELECT id, signature FROM article_signatures WHERE url = ?", [url]).fetchone()
            if row is None:
                continue
            sig_id, sig = row
            keys = [bucket for _, bucket in band_buckets(sig)]
            marks = ",".join("?" * len(keys))
            self.db.execute(
                f"DELETE FROM signature_bands WHERE level IN ({_IN_LEVELS}) AND bucket IN ({marks})"
                " AND signature_id = ?",
                [*keys, sig_id],
            )
            self.db.execute("DELETE FROM article_signatures WHERE id = ?", [sig_id])

    def _forget_pending(self, urls: set[str]) -> None:
        for url in urls:
            self.pending_signatures.pop(url, None)
        for key in list(self.pending):
            if remaining := [url for url in self.pending[key] if url not in urls]:
                self.pending[key] = remaining
            else:
                del self.pending[key]

    def _merge_full_levels(self) -> None:
        count = bands()[0]
        for level, cap in enumerate(LEVEL_CAPS):
            (rows,) = self.db.execute("SELECT count(*) FROM signature_bands WHERE level = ?", [level]).fetchone()
            if rows < cap * count:
                return
            move_level_down(self.db, level)

    def _stored_candidates(self, keys: list[int]) -> dict[str, bytes]:
        marks = ",".join("?" * len(keys))
        rows = self.db.execute(
            "SELECT url, signature FROM article_signatures WHERE id IN (SELECT signature_id FROM signature_bands"
            f" WHERE level IN ({_IN_LEVELS}) AND bucket IN ({marks}))",
            keys,
        ).fetchall()
        return dict(rows)
