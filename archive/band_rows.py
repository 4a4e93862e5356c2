"""Every stored signature's band rows in the near-duplicate index's order, sorted in bounded memory.

Rebuilding the index (a migration) writes one row per band per signature: 37 million at a million
articles. In the index's order they go into `signature_bands` as appends; in any other order each
one dirties a page anywhere in the table, and inside the migration's one transaction every page
written out again grows the WAL. SQLite's own sort would put them in order, but the SQLite the
project installs (archive/sqlite.py) keeps its sorts and temporary tables in memory: about a
gigabyte here. So the rows are sorted outside SQLite: spread over scratch files by bucket range (a
bucket is a uniform 64-bit hash, so the ranges fill evenly), then each file sorted alone with numpy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from archive.near_duplicates import band_buckets, bands

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

ROWS_PER_PART = 1_000_000  # sorted at a time: 16 MB of int64 pairs
_BUFFERED = 8_192  # values a part holds in memory before they go to its file
_YIELDED = 10_000  # rows turned into Python tuples at a time


def band_rows_in_order(signatures: Iterable[tuple[int, bytes]], count: int) -> Iterator[tuple[int, int]]:
    """(bucket, signature_id) for every band of these (id, signature) pairs, ordered by bucket, then
    id (the order of `signature_bands`' key within a level). `count`, the number of signatures,
    sizes the parts. The signatures are all read before the first row is given."""
    parts = 1 + count * bands()[0] // ROWS_PER_PART
    with tempfile.TemporaryDirectory(prefix="news-band-rows-") as scratch:
        files = [Path(scratch) / f"{part}.bin" for part in range(parts)]
        _spread(signatures, files)
        for file in files:
            if not file.exists():
                continue
            pairs = np.fromfile(file, dtype=np.int64).reshape(-1, 2)
            file.unlink()
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
            for start in range(0, len(pairs), _YIELDED):
                yield from ((bucket, sig_id) for bucket, sig_id in pairs[start : start + _YIELDED].tolist())


def _spread(signatures: Iterable[tuple[int, bytes]], files: list[Path]) -> None:
    """Append each band row to the file of its bucket's range (the lowest buckets to the first)."""
    parts = len(files)
    buffers: list[list[int]] = [[] for _ in files]

    def flush(part: int) -> None:
        with files[part].open("ab") as out:
            np.array(buffers[part], dtype=np.int64).tofile(out)
        buffers[part].clear()

    for sig_id, sig in signatures:
        for _, bucket in band_buckets(sig):
            part = ((bucket + 2**63) * parts) >> 64  # signed 64-bit bucket -> its range's number
            buffers[part] += (bucket, sig_id)
            if len(buffers[part]) >= _BUFFERED:
                flush(part)
    for part in range(parts):
        if buffers[part]:
            flush(part)
