"""What the installed SQLite's in-memory temporary storage costs, and what the project does about it.

    .venv/bin/python bench/temp_store.py [--signatures 100000] [--runs 1700000] [--results bench/RESULTS.md]

The SQLite the project installs (pysqlite3-binary, archive/sqlite.py) is built with
SQLITE_TEMP_STORE=3: temporary databases, temporary tables and the spill files of large sorts are
kept in memory, whatever `PRAGMA temp_store` says; Python's own SQLite (Debian's build) spills them
to files. Each case runs in a fresh process and reports its peak RSS (VmHWM):

- claims: a crawl's URL claims (archive/url_claims.py) for 200,000 sitemap URLs, in a file of their
  own, against SQLite's own temporary database (`connect("")`) as the claims used to be kept;
- band rebuild: the near-duplicate index rebuilt from N stored signatures (a migration) with the
  rows sorted outside SQLite (archive/band_rows.py), against a temporary table sorted by SQLite;
- level merge: the near-duplicate index moving a full level 1 (LEVEL_CAPS[1] articles' band rows)
  into level 2, as a crawl does every 40,000 articles, MERGE_CHUNK rows a statement
  (archive/near_duplicates.py), against one `INSERT ... SELECT` from the table into itself;
- index build: `CREATE INDEX` over `--runs` rows shaped like `crawl_runs(started_at)`, as a
  migration builds one, with the installed SQLite and with Python's own.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402

# Each case is a script run in a process of its own; it prints its result line as JSON.
_PEAK = """
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
"""

_CLAIMS = (
    _PEAK
    + """
import sys
sys.path.insert(0, sys.argv[1])
from archive.sqlite import sqlite3
from archive.url_claims import ClaimedUrls
if sys.argv[2] == "file":
    claims = ClaimedUrls()
    add = claims.add
else:
    conn = sqlite3.connect("", isolation_level=None)
    conn.execute("CREATE TABLE claimed (url TEXT PRIMARY KEY) WITHOUT ROWID")
    add = lambda url: conn.execute("INSERT OR IGNORE INTO claimed (url) VALUES (?)", [url])
base = peak_mb()
for number in range(200_000):
    add(f"https://news.example/2026/12/07/a-story-of-the-day-number-{number}.html")
print(json.dumps({"peak_mb": peak_mb(), "grew_mb": peak_mb() - base}))
"""
)

_BANDS = (
    _PEAK
    + """
import random, sys
sys.path.insert(0, sys.argv[1])
from archive.sqlite import sqlite3
from archive.band_rows import band_rows_in_order
from archive.near_duplicates import NUM_PERM, band_buckets
count = int(sys.argv[3])
conn = sqlite3.connect(sys.argv[4])
conn.execute("CREATE TABLE article_signatures (id INTEGER PRIMARY KEY, signature BLOB NOT NULL)")
conn.execute("CREATE TABLE signature_bands (level INTEGER NOT NULL, bucket INTEGER NOT NULL,"
             " signature_id INTEGER NOT NULL, PRIMARY KEY (level, bucket, signature_id)) WITHOUT ROWID")
rng = random.Random(1)
conn.executemany("INSERT INTO article_signatures VALUES (?, ?)",
                 ((n, rng.randbytes(NUM_PERM * 4)) for n in range(1, count + 1)))
conn.commit()
base = peak_mb()
signatures = conn.execute("SELECT id, signature FROM article_signatures")
if sys.argv[2] == "outside":
    conn.executemany("INSERT INTO signature_bands (level, bucket, signature_id) VALUES (2, ?, ?)",
                     band_rows_in_order(signatures, count))
else:  # as the migration did before band_rows.py
    conn.execute("CREATE TEMP TABLE rebuilt_bands (bucket INTEGER, signature_id INTEGER)")
    conn.executemany("INSERT INTO rebuilt_bands VALUES (?, ?)",
                     ((bucket, sig_id) for sig_id, sig in signatures for _, bucket in band_buckets(sig)))
    conn.execute("INSERT INTO signature_bands SELECT 2, bucket, signature_id FROM rebuilt_bands"
                 " ORDER BY bucket, signature_id")
conn.commit()
rows = conn.execute("SELECT count(*) FROM signature_bands").fetchone()[0]
print(json.dumps({"peak_mb": peak_mb(), "grew_mb": peak_mb() - base, "rows": rows}))
"""
)

_MERGE = (
    _PEAK
    + """
import random, sys
sys.path.insert(0, sys.argv[1])
from sqlite_utils import Database
from archive.sqlite import sqlite3
from archive.near_duplicates import LEVEL_CAPS, bands, move_level_down
conn = sqlite3.connect(sys.argv[3])
conn.execute("PRAGMA journal_mode = WAL")  # as the archive is opened
conn.execute("CREATE TABLE signature_bands (level INTEGER NOT NULL, bucket INTEGER NOT NULL,"
             " signature_id INTEGER NOT NULL, PRIMARY KEY (level, bucket, signature_id)) WITHOUT ROWID")
rng = random.Random(1)
per_article = bands()[0]
count = LEVEL_CAPS[1] * per_article
for level in (1, 2):  # a full level 1 over a level 2 as large
    conn.executemany("INSERT INTO signature_bands VALUES (?, ?, ?)",
                     ((level, rng.getrandbits(63), level * count + n // per_article) for n in range(count)))
conn.commit()
open("/proc/self/clear_refs", "w").write("5")  # the peak from here on: filling the table is not the merge
base = peak_mb()
if sys.argv[2] == "chunks":
    move_level_down(Database(conn), 1)
else:  # as archive/near_duplicates.py did before MERGE_CHUNK
    conn.execute("INSERT INTO signature_bands (level, bucket, signature_id)"
                 " SELECT 2, bucket, signature_id FROM signature_bands WHERE level = 1 ORDER BY bucket, signature_id")
    conn.execute("DELETE FROM signature_bands WHERE level = 1")
conn.commit()
assert conn.execute("SELECT count(*) FROM signature_bands WHERE level = 2").fetchone()[0] == 2 * count
print(json.dumps({"peak_mb": peak_mb(), "grew_mb": peak_mb() - base, "rows": count}))
"""
)

_INDEX = (
    _PEAK
    + """
import sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "installed":
    from archive.sqlite import sqlite3
else:
    import sqlite3
count = int(sys.argv[3])
conn = sqlite3.connect(sys.argv[4])
conn.execute("CREATE TABLE crawl_runs (id INTEGER PRIMARY KEY, source TEXT, started_at TEXT, status TEXT)")
def started(n):  # an hour's runs of 196 sources, ISO 8601 as the table keeps them
    return f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}+00:00"
conn.executemany("INSERT INTO crawl_runs (source, started_at, status) VALUES (?, ?, 'ok')",
                 ((f"source_{n % 196}", started(n)) for n in range(count)))
conn.commit()
base = peak_mb()
conn.execute("CREATE INDEX crawl_runs_started_at ON crawl_runs (started_at)")
conn.commit()
print(json.dumps({"peak_mb": peak_mb(), "grew_mb": peak_mb() - base, "sqlite": sqlite3.sqlite_version}))
"""
)


def run_case(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + script, str(ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=100_000, help="stored signatures to rebuild from")
    parser.add_argument("--runs", type=int, default=1_700_000, help="crawl_runs rows to index")
    parser.add_argument("--results", type=Path, help="write the section into this Markdown file")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="news-temp-store-") as scratch:
        for how, label in (("file", "claims in a file of their own (now)"), ("temp", 'claims in `connect("")`')):
            result = run_case(_CLAIMS, how)
            rows.append(("claims, 200,000 URLs", label, result))
        for how, label in (("outside", "rows sorted outside SQLite (now)"), ("temp", "a temporary table SQLite sorts")):
            result = run_case(_BANDS, how, str(args.signatures), str(Path(scratch) / f"bands-{how}.db"))
            rows.append((f"band rebuild, {args.signatures:,} signatures", label, result))
        for how, label in (("chunks", "MERGE_CHUNK rows a statement (now)"), ("one", "one INSERT ... SELECT")):
            result = run_case(_MERGE, how, str(Path(scratch) / f"merge-{how}.db"))
            rows.append((f"level merge, {result['rows']:,} band rows", label, result))
        for how, label in (("installed", "installed SQLite"), ("stdlib", "Python's own SQLite")):
            result = run_case(_INDEX, how, str(args.runs), str(Path(scratch) / f"index-{how}.db"))
            rows.append((f"CREATE INDEX, {args.runs:,} rows", f"{label} {result['sqlite']}", result))

    lines = ["| case | how | peak RSS MB | grown during the step MB |", "|---|---|---|---|"]
    lines += [f"| {case} | {how} | {r['peak_mb']} | {r['grew_mb']} |" for case, how, r in rows]
    table = "\n".join(lines)
    print(table)
    if args.results:
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        section = (
            "## Temporary storage of the installed SQLite (bench/temp_store.py)\n\n"
            f"Command: `python bench/temp_store.py --signatures {args.signatures} --runs {args.runs}`  \n"
            f"Machine: {platform.machine()}, Python {platform.python_version()}  \n"
            f"Run: {stamp}, commit {commit}\n\n" + (__doc__ or "").split("\n\n", 2)[2].strip() + "\n\n" + table + "\n"
        )
        write_section(args.results, "## Temporary storage of the installed SQLite (bench/temp_store.py)", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
