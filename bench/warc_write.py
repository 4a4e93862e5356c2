"""Raw pages in the archive file (`raw_pages`, before #25) against WARC files beside it (`raw_page_refs`).

    python bench/warc_write.py [--articles 1000] [--runs 3] [--write-results]

Pages: the real news pages of ../shared/datasets/news-pages (stored gzip-compressed, as nearly every
news site sends them), cycled under new URLs. Each article row carries the page's visible text as
its `text` (a stand-in for the extractor's, which would cost 35 ms a page and change nothing here).
Both ways store the same rows through the project's own code, in batches of NEWS_STORE_BATCH_SIZE
(200) in one transaction each:
- before: the `raw_pages` rows `Archive.write` upserted (the wire's gzip bytes, as kept since #21);
- after: `RawPageFiles.write` (a WARC response record and its request record per page, each its
  own gzip member, then one fsync per batch) and the `raw_page_refs` rows in the transaction.
Reported: the archive file's size per 1,000 articles, the WARC files' size, and the time to write
one article's raw page (wall and CPU of this process, median of the runs).
"""

from __future__ import annotations

import argparse
import gzip
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lxml.html

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive.raw_html import CompressedHtml, compress, raw_page_row  # noqa: E402
from archive.raw_pages import RawPageFiles, save_refs  # noqa: E402
from archive.schema import open_db  # noqa: E402
from archive.transactions import immediate_transaction  # noqa: E402
from archive.warc_files import HttpResponse, page_records, utf8_response, warc_directory  # noqa: E402
from bench.results import write_section  # noqa: E402

PAGES = ROOT.parent / "shared" / "datasets" / "news-pages" / "pages"
BATCH = 200  # crawl/settings.py NEWS_STORE_BATCH_SIZE
HEADERS = [("Server", "nginx"), ("Content-Type", "text/html; charset=utf-8"), ("Vary", "Accept-Encoding")]
REQUEST_HEADERS = [
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en"),
    ("User-Agent", "news-archive/0.1 (+https://github.com/news-archive/news-archive; personal news archive bot)"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
]


def load_pages() -> list[tuple[bytes, int, str]]:
    """(gzip bytes, uncompressed size, visible text) of each real page."""
    pages = []
    for path in sorted(PAGES.glob("*.html.gz")):
        wire = path.read_bytes()
        body = gzip.decompress(wire)
        tree = lxml.html.fromstring(body)
        for element in tree.xpath("//script|//style|//noscript"):
            element.drop_tree()
        text = tree.text_content()
        pages.append((wire, len(body), " ".join(text.split())))
    return pages


WORKER_CPU = {"raw_pages": 0.0, "warc": 0.0}  # seconds spent in worker_copy, by variant


def worker_copy(url: str, now: str, html: str, *, warc: bool) -> CompressedHtml:
    """What the extraction worker hands the store for a page that did not come gzipped: before
    #25 the HTML compressed with zstd, now its WARC records (crawl/extraction_worker.py)."""
    start = time.process_time()
    if not warc:
        copy = compress(html)
    else:
        response = HttpResponse(url, now, 200, HEADERS, b"", request_headers=REQUEST_HEADERS)
        recorded = utf8_response(response, html)
        copy = CompressedHtml(len(recorded.payload), page_records(recorded), "warc", "utf-8")
    WORKER_CPU["warc" if warc else "raw_pages"] += time.process_time() - start
    return copy


def rows_for(
    pages: list[tuple[bytes, int, str]], count: int, *, gzipped: bool, warc: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Article rows and raw page rows; `gzipped`: pages came gzip-compressed (kept as they came),
    else as the extraction worker prepared them (`worker_copy`, in the worker: not timed)."""
    articles, raws = [], []
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for n in range(count):
        wire, size, text = pages[n % len(pages)]
        url = f"https://news{n % 200}.example/story/{n:07d}"
        articles.append({"url": url, "source": f"s{n % 200}", "text": text, "first_seen_at": now, "last_seen_at": now})
        raw = raw_page_row(
            url,
            "",
            fetched_at=now,
            http_status=200,
            content_type="text/html; charset=utf-8",
            compressed=CompressedHtml(size, wire, "gzip", "utf-8")
            if gzipped
            else worker_copy(url, now, gzip.decompress(wire).decode(), warc=warc),
        )
        raw.update(headers=HEADERS, request_headers=REQUEST_HEADERS, fetched_url=url)
        raws.append(raw)
    return articles, raws


def build(
    directory: Path, articles: list[dict[str, Any]], raws: list[dict[str, Any]], *, warc: bool
) -> dict[str, float]:
    path = directory / "news.db"
    db = open_db(path)
    with immediate_transaction(db):
        db["articles"].insert_all(articles, batch_size=BATCH)
    files = RawPageFiles(db) if warc else None
    wall = cpu = 0.0
    for start in range(0, len(raws), BATCH):
        batch = [dict(row, headers=list(row["headers"])) for row in raws[start : start + BATCH]]
        if not warc:
            batch = [
                {k: v for k, v in row.items() if k not in ("headers", "request_headers", "fetched_url")}
                for row in batch
            ]
        t0, c0 = time.perf_counter(), time.process_time()
        if files is not None:
            refs = files.write(batch)
            with immediate_transaction(db):
                save_refs(db, refs)
        else:
            with immediate_transaction(db):
                db.table("raw_pages").upsert_all(batch, pk="url")
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    if files is not None:
        files.close()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    warc_bytes = sum(p.stat().st_size for p in warc_directory(path).glob("*.warc.gz")) if warc else 0
    return {
        "db_bytes": path.stat().st_size,
        "warc_bytes": warc_bytes,
        "wall_ms": wall * 1000 / len(raws),
        "cpu_ms": cpu * 1000 / len(raws),
    }


def measure(
    pages: list[tuple[bytes, int, str]], count: int, runs: int, *, gzipped: bool
) -> dict[str, dict[str, float]]:
    WORKER_CPU.update(raw_pages=0.0, warc=0.0)
    rows = {name: rows_for(pages, count, gzipped=gzipped, warc=name == "warc") for name in ("raw_pages", "warc")}
    results: dict[str, list[dict[str, float]]] = {"raw_pages": [], "warc": []}
    for _ in range(runs):
        for name in results:
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(build(Path(tmp), *rows[name], warc=name == "warc"))
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}
    for name in medians:
        medians[name]["worker_ms"] = WORKER_CPU[name] * 1000 / count
    return medians


def report(count: int, medians: dict[str, dict[str, float]], *, gzipped: bool) -> str:
    per = 1000 / count
    before, after = medians["raw_pages"], medians["warc"]
    db_before, db_after = before["db_bytes"] * per / 1e6, after["db_bytes"] * per / 1e6
    lines = [
        "pages served gzip-compressed (kept as they came)"
        if gzipped
        else "pages served uncompressed (the extraction worker makes the copy: before zstd, after the WARC records)",
        f"{'':34}{'raw_pages (before)':>20}{'WARC files (after)':>20}",
        f"{'archive file per 1,000 articles':34}{db_before:>17.2f} MB{db_after:>17.2f} MB",
        f"{'WARC files per 1,000 articles':34}{'-':>20}{after['warc_bytes'] * per / 1e6:>17.2f} MB",
        f"{'raw page write, wall per article':34}{before['wall_ms']:>17.3f} ms{after['wall_ms']:>17.3f} ms",
        f"{'raw page write, CPU per article':34}{before['cpu_ms']:>17.3f} ms{after['cpu_ms']:>17.3f} ms",
        f"{'extraction worker, CPU per article':34}{before['worker_ms']:>17.3f} ms{after['worker_ms']:>17.3f} ms",
        f"archive file after/before: {after['db_bytes'] / before['db_bytes']:.2f}x; "
        f"write wall after/before: {after['wall_ms'] / before['wall_ms']:.2f}x, "
        f"CPU: {after['cpu_ms'] / before['cpu_ms']:.2f}x",
    ]
    return "\n".join(lines)


READING = """\
Reading it: the archive file keeps the articles and a small reference per page; the pages go to
warc/. A page that came gzip-compressed (nearly all news sites) is written as those bytes in a stored
gzip member, so its cost stays near the old row's: the WARC side also builds the record's digests
(SHA-1) and its request record, and fsyncs the file once per batch before the commit. A page that came
uncompressed has its records built (gzip level 1) by the extraction worker, off the crawl's thread,
where the old zstd copy was made: the crawl process only appends them. That costs the worker more
than zstd did (gzip and SHA-1 digests of a 328 KB page), next to the ~35 ms its extraction takes.
The machine was shared (load average 5 to 7 from other test runs): wall times are noisy, CPU less so.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--write-results", action="store_true", help="replace this benchmark's section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    pages = load_pages()
    head = (
        f"{args.articles} articles, {len(pages)} real pages (shared/datasets/news-pages, cycled, "
        f"{sum(p[1] for p in pages) // len(pages) // 1000} KB of HTML on average), batches of {BATCH}, "
        f"median of {args.runs} runs"
    )
    parts = [
        report(args.articles, measure(pages, args.articles, args.runs, gzipped=g), gzipped=g) for g in (True, False)
    ]
    text = "\n\n".join([head, *parts])
    print(text)
    if args.write_results:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        command = f"python bench/warc_write.py --articles {args.articles} --runs {args.runs} --write-results"
        section = (
            "## Raw pages: archive file or WARC files (bench/warc_write.py)\n\n"
            "Issue #25 point 2: raw pages out of the archive file into WARC files beside it. Each article's page is\n"
            "stored the way the crawl stores it; the archive file holds the article rows either way.\n\n"
            f"Command: `{command}` (commit {commit})  \n"
            f"Machine: {platform.processor() or platform.machine()}, 2 cores, Python {platform.python_version()}  \n"
            f"Run: {datetime.now(UTC).isoformat(timespec='seconds')}\n\n"
            f"```\n{text}\n```\n\n{READING}"
        )
        write_section(
            ROOT / "bench" / "RESULTS.md", "## Raw pages: archive file or WARC files (bench/warc_write.py)", section
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
