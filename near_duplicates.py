"""Near-duplicate detection: MinHash signatures of article bodies and an LSH index kept in SQLite.

The same wire story reaches many sites with other page chrome, small edits and a new headline.
Each body becomes a MinHash signature over word 5-grams (datasketch); LSH splits it into
bands, and two articles that share any band bucket are candidates, confirmed when their
estimated Jaccard similarity reaches THRESHOLD. Buckets live in the `signature_bands` table,
so the index survives restarts and a lookup is a handful of indexed queries, never a scan.

THRESHOLD was chosen with bench/near_duplicates.py (see bench/RESULTS.md).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
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


def shingles(text: str) -> set[bytes]:
    words = _WORD_RE.findall(text.casefold())
    if len(words) < SHINGLE_SIZE:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE_SIZE]).encode() for i in range(len(words) - SHINGLE_SIZE + 1)}


def signature(text: str) -> bytes:
    """The body's MinHash signature as bytes (NUM_PERM unsigned 32-bit values)."""
    from datasketch import MinHash  # in the extraction workers only

    minhash = MinHash(num_perm=NUM_PERM, seed=_SEED)
    minhash.update_batch(list(shingles(text)))
    return minhash.hashvalues.astype(np.uint32).tobytes()


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.mean(np.frombuffer(a, dtype=np.uint32) == np.frombuffer(b, dtype=np.uint32)))


def band_buckets(sig: bytes) -> list[tuple[int, int]]:
    """(band, bucket) pairs: a bucket is a 64-bit hash of the band number and the band's rows,
    so one indexed `bucket IN (...)` query finds the candidates of every band at once."""
    count, rows = bands()
    width = rows * 4
    return [
        (
            band,
            int.from_bytes(
                hashlib.blake2b(bytes([band]) + sig[band * width : (band + 1) * width], digest_size=8).digest(),
                "big",
                signed=True,
            ),
        )
        for band in range(count)
    ]


def cluster_id_for(url: str) -> int:
    """A cluster is named after the first article put in it: a stable 63-bit id, no counter to share."""
    return int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "big") >> 1


class NearDuplicateIndex:
    """Lookups and inserts on the LSH tables, plus what this process added but has not flushed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: dict[tuple[int, int], list[str]] = {}
        self.pending_signatures: dict[str, bytes] = {}

    def matches(self, sig: bytes, *, exclude: str | None = None) -> list[tuple[str, float]]:
        """Stored articles whose similarity to `sig` reaches THRESHOLD, most similar first."""
        buckets = band_buckets(sig)
        candidates = self._stored_candidates(buckets)
        for key in buckets:
            candidates.update(self.pending.get(key, ()))
        candidates.discard(exclude)
        found = []
        for url, other in self._signatures(candidates):
            score = similarity(sig, other)
            if score >= THRESHOLD:
                found.append((url, score))
        return sorted(found, key=lambda pair: -pair[1])

    def add(self, url: str, sig: bytes) -> None:
        """Remember a new article's buckets; written by `rows()` with the next batch."""
        self.pending_signatures[url] = sig
        for key in band_buckets(sig):
            self.pending.setdefault(key, []).append(url)

    def take_rows(self, urls: set[str]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """Signature and band rows of these articles (about to be written); the rest stay pending."""
        signatures = [{"url": url, "signature": sig} for url, sig in self.pending_signatures.items() if url in urls]
        band_rows = [
            {"band": band, "bucket": bucket, "url": url}
            for (band, bucket), members in self.pending.items()
            for url in members
            if url in urls
        ]
        for url in urls:
            self.pending_signatures.pop(url, None)
        for key in list(self.pending):
            if remaining := [url for url in self.pending[key] if url not in urls]:
                self.pending[key] = remaining
            else:
                del self.pending[key]
        return signatures, band_rows

    def delete_stored(self, urls: Iterable[str]) -> None:
        """Remove stored articles' band rows, found through their stored signatures' buckets."""
        for url in urls:
            row = self.db.execute("SELECT signature FROM article_signatures WHERE url = ?", [url]).fetchone()
            if row is None:
                continue
            keys = [bucket for _, bucket in band_buckets(row[0])]
            marks = ",".join("?" * len(keys))
            self.db.execute(f"DELETE FROM signature_bands WHERE bucket IN ({marks}) AND url = ?", [*keys, url])

    def _stored_candidates(self, buckets: Iterable[tuple[int, int]]) -> set[str]:
        keys = [bucket for _, bucket in buckets]
        marks = ",".join("?" * len(keys))
        rows = self.db.execute(f"SELECT url FROM signature_bands WHERE bucket IN ({marks})", keys).fetchall()
        return {row[0] for row in rows}

    def _signatures(self, urls: set[str]) -> list[tuple[str, bytes]]:
        out = [(url, self.pending_signatures[url]) for url in urls if url in self.pending_signatures]
        stored = [url for url in urls if url not in self.pending_signatures]
        for start in range(0, len(stored), 500):
            chunk = stored[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out += self.db.execute(
                f"SELECT url, signature FROM article_signatures WHERE url IN ({marks})", chunk
            ).fetchall()
        return out
