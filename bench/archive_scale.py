"""A year of news in one archive: is every Datasette page, chart and `status` still fast?

    nice -n 10 .venv/bin/python bench/archive_scale.py --articles 100000 [--db PATH] [--keep]
        [--results bench/RESULTS.md]

Builds an archive of N articles through the project's own storage code (schema.open_db and
Archive.write, so the triggers, summary tables and near-duplicate index are the pipeline's), with
real article texts from ../shared/datasets/news-pages cycled with variation, spread the way a year
of crawling spreads them: 200 sources of unequal output over 365 days, hourly crawl runs for 196 of
them (1.7 million runs), a few failures, AMP aliases, revisions, and near-duplicate clusters (a
story copied by other sources). Raw pages are not stored: they are what issue #25's point 2 moves
out of the archive file, and would only add their bytes.

Then it serves the archive with the command `make serve` runs (the Makefile's own target, on a free
127.0.0.1 port) and times every page: tables with their facets, the search page both ways, every
canned query, the dashboard and every chart's query, and `scheduler.py status`. Each is asked once
to warm up and then 5 times; the median counts. A page that answers an error, drops a facet (times
out) or truncates its rows is reported as such. File sizes per table come from dbstat.

Signatures: MinHash of a 5,000-character body costs 0.7 ms, which would make the signatures alone
12 minutes of a 1M build on this machine; a variant of a text reuses the signature of its text and
rotation (2,008 distinct signatures), which gives the near-duplicate tables their real size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive.near_duplicates import cluster_id_for, signature  # noqa: E402
from archive.schema import open_db  # noqa: E402
from archive.sqlite import sqlite3  # noqa: E402
from archive.store import Archive, PendingWrites  # noqa: E402 - the project root is put on the path just above
from bench.results import write_section  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "news-pages" / "truth.jsonl"
SECTION = "## A year of news in one archive (bench/archive_scale.py)"
SOURCES = 200
RUN_SOURCES = 196  # sources crawled hourly (the rest: by hand)
DAYS = 365
BATCH = 2_000
COPY_SHARE = 0.08  # articles that copy a recent story of another source (a near-duplicate cluster)
ALIAS_SHARE = 0.2  # articles also reached under an AMP URL
REVISION_SHARE = 0.02  # articles changed once after they were stored
WARM_REQUESTS = 5
TARGET_MS = 500.0


# --- building ---------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def load_texts() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row.get("title") and len(re.findall(r"\w{4,}", row.get("body") or "")) > 50]


def source_weights(rng: random.Random) -> list[float]:
    """Some sources publish fifty times as much as others (a long tail, as on real sites)."""
    return [1.0 / (rank + 5) ** 0.9 * rng.uniform(0.8, 1.2) for rank in range(SOURCES)]


def varied_text(base: str, rotation: int, serial: int, words: list[str], rng: random.Random) -> str:
    """The base text with its paragraphs rotated and one sentence of its own words added."""
    paragraphs = [p for p in base.split("\n") if p.strip()]
    shift = rotation % max(1, len(paragraphs))
    paragraphs = paragraphs[shift:] + paragraphs[:shift]
    sentence = " ".join(rng.choice(words) for _ in range(12)).capitalize()
    return "\n".join([*paragraphs, f"{sentence} (report {serial})."])


class ArchiveBuilder:
    def __init__(
        self,
        path: Path,
        articles: int,
        *,
        run_hours: int = DAYS * 24,
        seed: int = 25,
        texts: list[dict[str, Any]] | None = None,
    ) -> None:
        """`texts` (title, body, authors, language), by default the real pages of news-pages; the
        tests pass made-up ones, since the dataset is not on a user's machine."""
        self.path = path
        self.total = articles
        self.run_hours = run_hours  # hourly crawl runs of RUN_SOURCES sources, ending now
        self.rng = random.Random(seed)
        self.texts = texts if texts is not None else load_texts()
        self.words = [[w for w in re.findall(r"\w{4,}", t["body"]) if not w.isdigit()] for t in self.texts]
        self.sources = [f"source_{i:03d}" for i in range(SOURCES)]
        self.weights = source_weights(self.rng)
        self.end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(days=DAYS)
        self.signatures: dict[tuple[int, int], bytes] = {}
        self.recent: list[tuple[str, int, int, int]] = []  # (url, base, rotation, cluster) of the last articles

    def build(self) -> dict[str, float]:
        timings: dict[str, float] = {}
        archive = Archive.open(self.path)
        try:
            began = time.perf_counter()
            self.write_sources(archive)
            self.write_articles(archive)
            timings["articles_s"] = time.perf_counter() - began
            began = time.perf_counter()
            self.write_runs(archive)
            timings["runs_s"] = time.perf_counter() - began
            began = time.perf_counter()
            archive.db.execute("ANALYZE")
            archive.db.conn.commit()
            timings["analyze_s"] = time.perf_counter() - began
        finally:
            archive.close()
        return timings

    def write_sources(self, archive: Archive) -> None:
        rows = [
            {
                "name": name,
                "enabled": 1,
                "schedule": "every 1h",
                "feeds": json.dumps([f"https://{name}.example/feed.xml"]),
                "sitemaps": "[]",
                "start_pages": "[]",
                "allowed_domains": json.dumps([f"{name}.example"]),
                "updated_at": iso(self.end),
            }
            for name in self.sources
        ]
        with archive.immediate_transaction():
            archive.db["sources"].upsert_all(rows, pk="name")

    def article_rows(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], tuple[int, int]]]:
        """Each article in publication order, with its aliases and (text, rotation) it varies."""
        step = (self.end - self.start) / self.total
        for serial in range(self.total):
            rng = self.rng
            published = self.start + step * serial + timedelta(seconds=rng.uniform(0, 600))
            source = rng.choices(self.sources, self.weights)[0]
            url = f"https://{source}.example/{published:%Y/%m/%d}/story-{serial}"
            if self.recent and rng.random() < COPY_SHARE:
                _, base, rotation, cluster = rng.choice(self.recent)  # a copy of a recent story
            else:
                base, rotation, cluster = rng.randrange(len(self.texts)), rng.randrange(8), cluster_id_for(url)
            text_row = self.texts[base]
            text = varied_text(text_row["body"], rotation, serial, self.words[base], rng)
            seen = published + timedelta(minutes=rng.uniform(5, 90))
            row = {
                "url": url,
                "source": source,
                "title": f"{text_row['title']} ({serial})",
                "authors": json.dumps(text_row.get("authors") or []),
                # A few articles carry no date: they count on the day they were first stored.
                "published_at": None if rng.random() < 0.03 else iso(published),
                "modified_at": None,
                "language": text_row.get("language"),
                "sitename": source,
                "description": text.split("\n", 1)[0][:300],
                "categories": "[]",
                "tags": "[]",
                "image": None,
                "text": text,
                "markdown": text.replace("\n", "\n\n"),
                "word_count": len(text.split()),
                "body_hash": f"{serial:040x}",
                "discovered_via": rng.choice(["feed", "sitemap", "listing"]),
                "fetched_at": iso(seen),
                "first_seen_at": iso(seen),
                "last_seen_at": iso(min(seen + timedelta(days=rng.uniform(0, 3)), self.end)),
                "updated_at": None,
                "provenance": json.dumps({"title": "json-ld", "published_at": "json-ld"}),
                "version": 1,
                "cluster_id": cluster,
                "taken_down_at": None,
            }
            self.recent = [*self.recent[-199:], (url, base, rotation, cluster)]
            aliases = []
            if rng.random() < ALIAS_SHARE:
                aliases.append(
                    {"alias": f"{url}/amp", "url": url, "reason": "amp", "source": source, "first_seen_at": iso(seen)}
                )
            yield row, aliases, (base, rotation)

    def signature_for(self, row: dict[str, Any], key: tuple[int, int]) -> bytes:
        if key not in self.signatures:
            self.signatures[key] = signature(row["text"])
        return self.signatures[key]

    def write_articles(self, archive: Archive) -> None:
        batch = PendingWrites()
        written = 0
        began = time.perf_counter()
        for row, aliases, variant in self.article_rows():
            batch.new.append(row)
            batch.aliases += aliases
            archive.near.add(row["url"], self.signature_for(row, variant))
            if self.rng.random() < REVISION_SHARE:
                batch.revisions.append(
                    {
                        "url": row["url"],
                        "version": 1,
                        "replaced_at": row["last_seen_at"],
                        "changed": '["title"]',
                        "title": row["title"] + " (first headline)",
                        "authors": row["authors"],
                        "published_at": row["published_at"],
                        "modified_at": None,
                        "text": row["text"],
                        "body_hash": row["body_hash"],
                        "fetched_at": row["fetched_at"],
                    }
                )
            if len(batch.new) >= BATCH:
                archive.write(batch)
                written += len(batch.new)
                batch = PendingWrites()
                if written % 50_000 == 0:
                    rate = written / (time.perf_counter() - began)
                    print(f"  {written:,} articles written ({rate:,.0f}/s)", flush=True)
        if batch.new:
            archive.write(batch)

    def write_runs(self, archive: Archive) -> None:
        """Hourly runs for RUN_SOURCES sources (a year of them by default), a failure now and then."""
        runs = archive.db["crawl_runs"]
        failures = archive.db["failures"]
        per_run = self.total / (RUN_SOURCES * DAYS * 24)
        next_id = 1
        for hour in range(self.run_hours):
            started_hour = self.end - timedelta(hours=self.run_hours - hour)
            rows, failed = [], []
            for index in range(RUN_SOURCES):
                started = started_hour + timedelta(seconds=index * 17 % 3600)
                duration = round(self.rng.uniform(3, 40) + (200 if self.rng.random() < 0.01 else 0), 1)
                status = "ok" if self.rng.random() > 0.02 else "failed"
                new = int(per_run * 2 * self.rng.random() + 0.5)
                rows.append(
                    {
                        "id": next_id,
                        "source": self.sources[index],
                        "started_at": iso(started),
                        "finished_at": iso(started + timedelta(seconds=duration)),
                        "duration_s": duration,
                        "status": status,
                        "finish_reason": "finished" if status == "ok" else "closespider_errorcount",
                        "pid": 1000 + next_id % 30000,
                        "requests": 3 + new,
                        "responses": 3 + new,
                        "articles_new": new,
                        "articles_updated": 0,
                        "articles_unchanged": 0,
                        "articles_duplicate": 0,
                        "not_articles": 0,
                        "skipped_stored": self.rng.randrange(40),
                        "failures": int(status == "failed"),
                        "log_file": None,
                        "not_modified": 1,
                        "articles_revisited": 0,
                        "articles_taken_down": 0,
                    }
                )
                if status == "failed":
                    failed.append(
                        {
                            "run_id": next_id,
                            "source": self.sources[index],
                            "url": f"https://{self.sources[index]}.example/feed.xml",
                            "stage": "fetch",
                            "http_status": 503,
                            "reason": "HTTP 503",
                            "occurred_at": iso(started),
                        }
                    )
                next_id += 1
            with archive.immediate_transaction():
                runs.insert_all(rows, pk="id")
                if failed:
                    failures.insert_all(failed, pk="id")
        with archive.immediate_transaction():
            archive.db["daemon"].upsert(
                {
                    "id": 1,
                    "pid": os.getpid(),
                    "host": "bench",
                    "status": "stopped",
                    "started_at": iso(self.start),
                    "last_tick_at": iso(self.end),
                    "tick_s": 15.0,
                    "stopped_at": iso(self.end),
                    "sources_file": "sources.toml",
                    "sources": RUN_SOURCES,
                    "running": 0,
                    "queued": 0,
                },
                pk="id",
            )


# --- serving and timing -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """The archive served by `make serve` (the Makefile's own command) on a free port."""

    def __init__(self, db: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            ["make", "-s", "serve", f"DB={db}", f"PORT={self.port}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: make and Datasette end together
        )

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/-/versions.json", timeout=5).read()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"make serve exited: {self.process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.3)
        raise RuntimeError("make serve did not answer within 60 s")

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)

    def get(self, path: str) -> tuple[float, int, bytes]:
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(self.base + path, timeout=120) as response:
                body, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        except OSError as exc:
            body, status = str(exc).encode(), 0
        return (time.perf_counter() - began) * 1000, status, body


def common_and_rare_words(db: Path) -> tuple[str, str, str, list[tuple[str, float]]]:
    """The word nearest to half the articles' texts, the next nearest (for a two-word search), one
    in a few hundred, and the two words on either side of 58 % of the texts with their shares (the
    issue measured a word in 58 %, and bm25 ranks every match), read from the FTS vocabulary."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, articles_fts, 'row')")
        (total,) = conn.execute("SELECT count(*) FROM articles").fetchone()
        # One pass over the vocabulary (it is read whole either way: 25 s at a million articles).
        words = conn.execute("SELECT term, doc FROM temp.vocab WHERE term GLOB '[a-z][a-z]*'").fetchall()
    finally:
        conn.close()
    common, second = sorted((w for w in words if len(w[0]) > 3), key=lambda w: abs(w[1] - total // 2))[:2]
    rare = min((w for w in words if len(w[0]) > 5), key=lambda w: abs(w[1] - 300))
    share = total * 58 // 100
    below = max((w for w in words if w[1] < share), key=lambda w: w[1])
    above = min((w for w in words if w[1] >= share), key=lambda w: w[1])
    return common[0], second[0], rare[0], [(word, doc / total) for word, doc in (below, above)]


def pages_to_time(db: Path) -> list[tuple[str, str]]:
    """(what, path) for every page, canned query and chart query a reader meets."""
    metadata = yaml.safe_load((ROOT / "metadata.yml").read_text(encoding="utf-8"))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    url, source = conn.execute("SELECT url, source FROM articles ORDER BY rowid DESC LIMIT 1").fetchone()
    conn.close()
    common, second, rare, around_58 = common_and_rare_words(db)
    pages = [
        ("index page", "/"),
        ("database page", "/news"),
        ("articles table, default view", "/news/articles"),
        ("articles table as JSON (facets checked)", "/news/articles.json"),
        ("articles filtered by source", f"/news/articles?{urlencode({'source': source})}"),
        ("articles by first seen", "/news/articles?_sort_desc=first_seen_at"),
        ("article page", f"/news/articles/{quote(url.replace('/', '~2F').replace(':', '~3A').replace('.', '~2E'))}"),
        (f"search page, best match ({common!r}, common)", f"/news/search?{urlencode({'q': common})}"),
        (f"search page, newest first ({common!r})", f"/news/search?{urlencode({'q': common, 'sort': 'newest'})}"),
        *(
            (f"search page, best match ({word!r}, in {share:.0%} of texts)", f"/news/search?{urlencode({'q': word})}")
            for word, share in around_58
        ),
        (f"search page, best match ({rare!r}, rare)", f"/news/search?{urlencode({'q': rare})}"),
        (f"search page, newest first ({rare!r})", f"/news/search?{urlencode({'q': rare, 'sort': 'newest'})}"),
        (f"Datasette's ?_search= ({rare!r})", f"/news/articles?{urlencode({'_search': rare})}"),
        (f"Datasette's ?_search= ({common!r})", f"/news/articles?{urlencode({'_search': common})}"),
        *(
            (
                f"Datasette's ?_search= ({word!r}, in {share:.0%} of texts)",
                f"/news/articles?{urlencode({'_search': word})}",
            )
            for word, share in around_58
        ),
        (
            f"Datasette's ?_search= ({common!r}) and source=",
            f"/news/articles?{urlencode({'_search': common, 'source': source})}",
        ),
        (
            f"Datasette's ?_search= ('{common} {second}')",
            f"/news/articles?{urlencode({'_search': f'{common} {second}'})}",
        ),
        ("crawl_runs table", "/news/crawl_runs"),
        ("crawl_runs filtered by source", f"/news/crawl_runs?{urlencode({'source': source})}"),
        ("article_clusters view", "/news/article_clusters"),
        ("url_aliases table", "/news/url_aliases"),
        ("article_revisions table", "/news/article_revisions"),
        ("failures table", "/news/failures"),
        ("dashboard", "/-/dashboards/news"),
        ("dashboard for one source", f"/-/dashboards/news?{urlencode({'source': source})}"),
    ]
    for name in metadata["databases"]["news"]["queries"]:
        params = {"q": common} if name == "search" else {}
        pages.append((f"canned query {name}", f"/news/{name}.json?{urlencode({**params, '_shape': 'objects'})}"))
    pages.append(("canned query latest_articles, one source", f"/news/latest_articles.json?source={source}"))
    pages.append(("canned query recent_crawl_runs, one source", f"/news/recent_crawl_runs.json?source={source}"))
    charts = metadata["plugins"]["datasette-dashboards"]["news"]["charts"]
    for name, chart in charts.items():
        sql = re.sub(r"\[\[.*?\]\]", "", chart["query"])
        pages.append((f"chart {name}", f"/news.json?{urlencode({'sql': sql, '_shape': 'objects'})}"))
        with_source = re.sub(r"\[\[(.*?)\]\]", lambda m: m.group(1) if ":source" in m.group(1) else "", chart["query"])
        if with_source != sql:
            path = f"/news.json?{urlencode({'sql': with_source, 'source': source, '_shape': 'objects'})}"
            pages.append((f"chart {name}, one source", path))
    return pages


def problems(path: str, status: int, body: bytes, configured_facets: int) -> list[str]:
    """An error, a facet dropped (timed out) or rows cut at max_returned_rows."""
    if status != 200:
        return [f"HTTP {status}: {' '.join(body[:300].decode(errors='replace').split())[:160]}"]
    if ".json" not in path.split("?")[0]:
        return []
    data = json.loads(body)
    found = []
    if data.get("ok") is False:
        found.append(f"error: {data.get('error')}")
    if data.get("truncated"):
        found.append(f"truncated at {len(data.get('rows') or [])} rows")
    if data.get("facets_timed_out"):
        found.append(f"facets dropped: {', '.join(data['facets_timed_out'])}")
    if len(data.get("facet_results") or {}) < configured_facets:
        found.append(f"only {len(data.get('facet_results') or {})} of {configured_facets} facets")
    return found


def time_pages(db: Path) -> list[dict[str, Any]]:
    metadata = yaml.safe_load((ROOT / "metadata.yml").read_text(encoding="utf-8"))
    facets = len(metadata["databases"]["news"]["tables"]["articles"]["facets"])
    results = []
    with Served(db) as served:
        for what, path in pages_to_time(db):
            served.get(path)  # warm-up
            timings, statuses, found = [], set(), []
            for _ in range(WARM_REQUESTS):
                ms, status, body = served.get(path)
                timings.append(ms)
                statuses.add(status)
                found = problems(path, status, body, facets if path.startswith("/news/articles.json") else 0)
            table = re.fullmatch(r"/news/(\w+)(\?.*)?", path)
            if table and not found and table.group(1) not in metadata["databases"]["news"]["queries"]:
                # A table page: its JSON says whether a facet was dropped or the count given up.
                json_path = f"/news/{table.group(1)}.json{table.group(2) or ''}"
                found = problems(json_path, *served.get(json_path)[1:], facets if table.group(1) == "articles" else 0)
            results.append({"what": what, "path": path, "median_ms": statistics.median(timings), "problems": found})
            print(f"  {statistics.median(timings):8.0f} ms  {what}  {'; '.join(found)}", flush=True)
    return results


def time_status(db: Path) -> dict[str, Any]:
    command = [sys.executable, "scheduler.py", "status", "--db", str(db), "--sources", str(ROOT / "sources.toml")]
    timings, problem = [], []
    for attempt in range(WARM_REQUESTS + 1):
        began = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if attempt:
            timings.append((time.perf_counter() - began) * 1000)
        # 3 says the daemon is not running (LSB status), which is so here: the archive is a copy.
        if done.returncode not in (0, 3) or done.stderr.strip():
            problem = [f"exit {done.returncode}: {done.stderr.strip()[-300:]}"]
    median = statistics.median(timings)
    print(f"  {median:8.0f} ms  scheduler.py status  {'; '.join(problem)}", flush=True)
    return {"what": "`scheduler.py status` (a whole process)", "path": "", "median_ms": median, "problems": problem}


# Pages per table and index. The project's SQLite (pysqlite3's build) has no dbstat table, Python's
# own has: read in a process of its own, as two SQLite libraries must never share one process.
_DBSTAT = """
import json, sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
pages = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
print(json.dumps([[owner.get(name, name), size] for name, size in pages]))
"""


def table_sizes(db: Path) -> list[tuple[str, int]]:
    """Bytes per table, its indexes included (dbstat), largest first."""
    found = subprocess.run([sys.executable, "-c", _DBSTAT, str(db)], capture_output=True, text=True, check=True)
    sizes: dict[str, int] = {}
    for table, size in json.loads(found.stdout):
        if table.startswith("articles_fts"):
            table = "articles_fts (full-text index)"
        elif table in ("article_signatures", "signature_bands"):
            table = "article_signatures + signature_bands (near-duplicates)"
        sizes[table] = sizes.get(table, 0) + size
    return sorted(sizes.items(), key=lambda pair: -pair[1])


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "crawl_runs", "url_aliases", "article_revisions", "failures")
        } | {
            "clusters of 2+": conn.execute("SELECT count(*) FROM article_cluster_sizes WHERE articles > 1").fetchone()[
                0
            ]
        }
    finally:
        conn.close()


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def report(n: int, build: dict[str, float], db: Path, timed: list[dict[str, Any]]) -> str:
    size = db.stat().st_size
    slow = [row for row in timed if row["median_ms"] > TARGET_MS]
    bad = [row for row in timed if row["problems"]]
    lines = [
        f"### {n:,} articles",
        "",
        f"Command: `nice -n 10 .venv/bin/python bench/archive_scale.py --articles {n}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
        f"load average {os.getloadavg()[0]:.1f} at the end (other people's work included)  ",
        f"Run: {datetime.now(UTC).replace(microsecond=0).isoformat()}, commit {commit()}  ",
        f"Archive: {', '.join(f'{v:,} {k}' for k, v in counts(db).items())}; "
        + (
            f"built in {build.get('total_s', 0):,.0f} s (articles {build.get('articles_s', 0):,.0f} s, "
            f"runs {build.get('runs_s', 0):,.0f} s, ANALYZE {build.get('analyze_s', 0):,.0f} s)"
            if build
            else "build times not recorded (built before --keep kept them)"
        )
        + f"; file {size / 1e9:.2f} GB",
        "",
        f"Verdict: {len(timed) - len(slow)} of {len(timed)} under {TARGET_MS:.0f} ms; "
        f"{len(bad)} with an error, a dropped facet or truncated rows.",
        "",
        "| page (median of 5 warm requests) | ms | problems |",
        "|---|---:|---|",
    ]
    lines += [f"| {row['what']} | {row['median_ms']:,.0f} | {'; '.join(row['problems'])} |" for row in timed]
    lines += ["", "| table (with its indexes) | MB |", "|---|---:|"]
    lines += [f"| {name} | {size / 1e6:,.1f} |" for name, size in table_sizes(db)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument(
        "--db", type=Path, help="where to build, a file named news.db (default: one in the system temp folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the built archive (it is deleted otherwise)")
    parser.add_argument("--reuse", action="store_true", help="time an archive already built at --db")
    parser.add_argument("--results", type=Path, help="write the report into this file (bench/RESULTS.md)")
    args = parser.parse_args()
    # Named news.db: Datasette names the database after the file, and metadata.yml describes "news".
    db = args.db or Path(tempfile.gettempdir()) / f"archive_scale_{args.articles}" / "news.db"
    if db.name != "news.db":
        parser.error("--db must name a file news.db (metadata.yml describes the database 'news')")
    db.parent.mkdir(parents=True, exist_ok=True)
    build: dict[str, float] = {}
    try:
        if not args.reuse:
            for leftover in db.parent.glob(db.name + "*"):
                leftover.unlink()
            print(f"building {args.articles:,} articles into {db}", flush=True)
            began = time.perf_counter()
            build = ArchiveBuilder(db, args.articles).build()
            build["total_s"] = time.perf_counter() - began
            if args.keep:  # for the runs that --reuse it
                db.with_suffix(".build.json").write_text(json.dumps(build))
        else:
            if db.with_suffix(".build.json").exists():
                build = json.loads(db.with_suffix(".build.json").read_text())
            # Brought to this commit's schema first, as a crawl would bring an existing archive.
            began = time.perf_counter()
            open_db(db).conn.close()
            print(f"migrated in {time.perf_counter() - began:.1f} s", flush=True)
        print("timing pages", flush=True)
        timed = [*time_pages(db), time_status(db)]
        text = report(args.articles, build, db, timed)
        print(text)
        if args.results:
            append_run(args.results, text)
    finally:
        if not args.keep and not args.reuse:
            for leftover in db.parent.glob(db.name + "*"):
                leftover.unlink()
    return 0


def append_run(path: Path, run: str) -> None:
    """The section keeps one run per archive size: this run replaces an earlier one of its size.
    What it says before the first run (how to read the tables, what is known) is kept as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start = text.find(SECTION)
    body = text[start + len(SECTION) :].split("\n## ", 1)[0] if start >= 0 else ""
    intro, *chunks = body.split("\n### ")
    runs = {chunk.split("\n", 1)[0]: "### " + chunk for chunk in chunks}
    runs[run.split("\n", 1)[0].removeprefix("### ")] = run
    ordered = sorted(runs.values(), key=lambda chunk: int(re.sub(r"\D", "", chunk.split("\n", 1)[0]) or 0))
    runs_text = "\n".join(chunk.rstrip() + "\n" for chunk in ordered)
    intro = intro.strip("\n")
    write_section(path, SECTION, f"{SECTION}\n\n" + (f"{intro}\n\n" if intro else "") + runs_text)


if __name__ == "__main__":
    sys.exit(main())
