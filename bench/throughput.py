"""Throughput and memory at scale: the real pipeline crawling a news site on loopback addresses.

    .venv/bin/python bench/throughput.py --articles 2000 [--articles 5000 ...] [--peers] [--profile]
                                         [--sitemap-style files|query] [--results bench/RESULTS.md]
                                         [--pages generated|real|both] [--dataset DIR]

The site is generated (``--pages generated``, the default: bench/sitegen.py), made of the real pages
of the news-pages dataset cycled to N distinct articles (``--pages real``: bench/realsite.py, each
cycle of its 257 distinct pages on a loopback address of its own, each copy with its own URL, canonical link
and one unique sentence), or both, one after the other for each N (``--pages both``). A real-page
run's raw extraction rate is timed on one whole cycle (each dataset page once, the crawl's mix), not
on ``--raw-sample`` pages, and what it stored is judged against the dataset's truth.jsonl
(bench/realsite.py's judge: title, authors, date, body words, the copy's own sentence).

For each N it:

1. generates (or reuses, in bench/out/site-N) a site of N articles with bench/sitegen.py and serves
   it from a separate process (bench/siteserver.py: pre-rendered bytes, little CPU). With
   ``--sitemap-style query`` the site publishes its sitemaps at Arc XP's query URLs
   (/arc/outboundfeeds/sitemap-index/?outputType=xml, ...; see bench/sitegen.py) and lives in
   bench/out/site-N-query;
2. measures the raw single-process rate of ``trafilatura.bare_extraction(html, url=url,
   with_metadata=True)`` on a sample of the same pages (before and after the crawl, as the machine
   is shared), and of the project's own ``extract_article`` on the same sample;
3. crawls the site through the real pipeline: ``scrapy crawl news -a source=bench`` as a subprocess,
   with the site's sitemap index (files or query URL) and feed as seeds, ``allow_private = true``,
   ``delay = "0s"`` and ``-s AUTOTHROTTLE_ENABLED=0 -s CONCURRENT_REQUESTS_PER_DOMAIN=16`` so
   politeness is off, and bench/stagetimer.py enabled with ``-s EXTENSIONS=...`` to time the
   pipeline stages in-process;
4. samples every process of the crawl (the crawl process, the forkserver, the extraction workers)
   through /proc (bench/proctree.py) for CPU and peak memory;
5. checks what was stored against the site's manifest (title, authors, date, body, no comments);
6. with ``--peers``, runs trafilatura's command-line crawler (feed and sitemap) and news-please on
   the same site from bench/out/peers-venv, and checks what they stored the same way.

CPU by stage is split as: extraction = the worker processes' CPU; extraction handoff = the crawl
process's threads other than the reactor's (ProcessPoolExecutor's queue threads pickle pages to
the workers and results back); dedup, storage + search index (SQLite writes, FTS5 triggers, raw-HTML
compression), classify and canonical = stagetimer's per-method thread CPU; download and parse = the
rest of the reactor thread (Scrapy, HTTP, gzip, sitemap/feed parsing, scheduling).

With ``--results FILE`` the section "## Throughput and memory (bench/throughput.py)" of FILE (for
``--pages real`` or ``both``: "## Throughput and memory on real pages (bench/throughput.py --pages
real)") is replaced (other sections are kept; ``--notes FILE`` appends analysis to it). Each run's measurements
go to bench/out/throughput-N.json (throughput-N-query.json for a query-style site,
throughput-real-N.json for real pages, throughput-real-N-on-S-sites.json with ``--sites S``); ``--report-from
JSON...`` rewrites the section from saved runs. The sitemap style is recorded in the JSON
(``sitemap_style``) and a query-style run is marked "(query sitemaps)" in the report; runs saved
before there were styles were all of the files style and are reported as before.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose extraction.py would shadow the package

from archive.sqlite import sqlite3  # noqa: E402
from bench import realsite  # noqa: E402
from bench.proctree import TreeResult, run_measured  # noqa: E402
from bench.results import write_section  # noqa: E402
from bench.served_site import ServedSite, judge  # noqa: E402
from bench.sitegen import (  # noqa: E402
    SITEMAP_LIMIT,
    SITEMAP_STYLES,
    ensure_site,
    iter_pages,
    read_manifest,
    sitemap_index_path,
)

OUT = ROOT / "bench" / "out"
PEERS_VENV = OUT / "peers-venv"
RESULTS_HEADING = "## Throughput and memory (bench/throughput.py)"
REAL_RESULTS_HEADING = "## Throughput and memory on real pages (bench/throughput.py --pages real)"
SOURCE_NAME = "bench"
STAGE_TIMER = "bench.stagetimer.StageTimer"
MEM_TRACE = "bench.memtrace.MemTrace"
MEM_SPIKES = "bench.memspikes.MemSpikes"
TARGET_SPEEDUP = 1.5
TARGET_MEMORY_MB = 500
TARGET_STORE_SHARE = 0.05


# --- the site --------------------------------------------------------------------------------


# --- raw extraction rate ---------------------------------------------------------------------


def sample_pages(site: Path, manifest: list[dict[str, Any]], size: int, base_url: str) -> list[tuple[str, str]]:
    """(URL, HTML) of `size` article pages spread evenly over the generated site."""
    step = max(1, len(manifest) // size)
    paths = [m["path"] for m in manifest[::step][:size]]
    return [(base_url + path, page) for path, page in iter_pages(site, paths)]


def extraction_rates(pages: list[tuple[str, str]]) -> dict[str, float]:
    """Pages per second of plain trafilatura and of the project's extractor, in this one process,
    on (URL, HTML) pairs.

    `*_per_s` divide by CPU time (what the extractor costs), `*_wall_per_s` by elapsed time (what it
    achieved on the machine as loaded at that moment, comparable with the crawl's own wall rate).
    """
    from trafilatura import bare_extraction

    from extraction import extract_article

    bare_extraction(pages[0][1], url=pages[0][0], with_metadata=True)  # warm-up
    extract_article(pages[0][1], pages[0][0], {})
    cpu, wall = time.process_time(), time.monotonic()
    for url, page in pages:
        bare_extraction(page, url=url, with_metadata=True)
    raw_cpu, raw_wall = time.process_time() - cpu, time.monotonic() - wall
    cpu, wall = time.process_time(), time.monotonic()
    for url, page in pages:
        extract_article(page, url, {})
    ours_cpu, ours_wall = time.process_time() - cpu, time.monotonic() - wall
    n = len(pages)
    return {
        "pages": n,
        "raw_per_s": n / raw_cpu,
        "raw_wall_per_s": n / raw_wall,
        "ours_per_s": n / ours_cpu,
        "ours_wall_per_s": n / ours_wall,
    }


# --- correctness ---------------------------------------------------------------------------


def stored_records(db_path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT url, title, authors, published_at, text FROM articles").fetchall()
    finally:
        conn.close()
    return [{"url": u, "title": t, "authors": json.loads(a or "[]"), "date": d, "text": x} for u, t, a, d, x in rows]


# --- the crawl ----------------------------------------------------------------------------


def write_sources(path: Path, sitemaps: list[str], feeds: list[str]) -> None:
    path.write_text(
        f"""[[source]]
name = "{SOURCE_NAME}"
every = "1h"
sitemaps = {json.dumps(sitemaps)}
feeds = {json.dumps(feeds)}
allow_private = true
delay = "0s"
""",
        encoding="utf-8",
    )


def seeds_of(base_url: str, site_meta: dict[str, Any], sitemap_style: str = "files") -> tuple[list[str], list[str]]:
    """(sitemaps, feeds) the benchmark's source lists, for a site served at `base_url`: for real
    pages each cycle's sitemap index on its own address (the same port as the first one's); for the
    generated site its index and its feed."""
    if site_meta.get("kind") == "real":
        first = f"//{site_meta['hosts'][0]}"
        indexes = zip(site_meta["hosts"], site_meta["sitemap_indexes"], strict=True)
        return [base_url.replace(first, f"//{host}", 1) + path for host, path in indexes], []
    return [base_url + sitemap_index_path(sitemap_style)], [base_url + "/feeds/rss.xml"]


def crawl_extensions(diagnostics: tuple[str, ...] = ()) -> dict[str, int]:
    """The project's extensions plus the stage timer and any diagnostic extensions asked for:
    `-s EXTENSIONS=` replaces the whole dict."""
    from crawl import settings

    return {**settings.EXTENSIONS, STAGE_TIMER: 0, **dict.fromkeys(diagnostics, 0)}


def crawl_command(
    work: Path, concurrency: int, workers: int | None, extra: dict[str, str], diagnostics: tuple[str, ...] = ()
) -> list[str]:
    settings = {
        "NEWS_DB_PATH": str(work / "news.db"),
        "NEWS_SOURCES_FILE": str(work / "sources.toml"),
        "AUTOTHROTTLE_ENABLED": "0",
        "DOWNLOAD_DELAY": "0",
        "CONCURRENT_REQUESTS": str(concurrency * 2),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(concurrency),
        "CLOSESPIDER_TIMEOUT": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FILE": str(work / "crawl.log"),
        "EXTENSIONS": json.dumps(crawl_extensions(diagnostics)),
        "BENCH_STAGE_FILE": str(work / "stages.json"),
        "BENCH_MEMTRACE_FILE": str(work / "memtrace.json"),
        "BENCH_MEMSPIKES_FILE": str(work / "memspikes.json"),
    }
    if workers is not None:
        settings["NEWS_EXTRACT_WORKERS"] = str(workers)
    settings.update({name: value.replace("{work}", str(work)) for name, value in extra.items()})
    command = [sys.executable, "-m", "scrapy", "crawl", "news", "-a", f"source={SOURCE_NAME}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def classify_procs(tree: TreeResult) -> dict[str, list[Any]]:
    """The crawl process, its multiprocessing helpers and the extraction workers, by role."""
    roles: dict[str, list[Any]] = {"crawl": [], "forkserver": [], "workers": [], "other": []}
    for info in tree.procs.values():
        if info.pid == tree.top_pid:
            roles["crawl"].append(info)
        elif "forkserver" in info.cmdline and info.ppid == tree.top_pid:
            roles["forkserver"].append(info)
        elif tree.procs.get(info.ppid) is not None and "forkserver" in tree.procs[info.ppid].cmdline:
            roles["workers"].append(info)
        else:
            roles["other"].append(info)  # resource tracker, a spawn-started worker, ...
    return roles


def workers_cpu_s(roles: dict[str, list[Any]]) -> float:
    """The extraction workers' CPU seconds. A worker replaced mid-crawl (crawl/worker_pool.py) is
    counted exactly: the forkserver waits for it, so its CPU is in the forkserver's children's time
    (sampling a worker misses what it did after its last sample, up to an interval each: thousands of
    workers at 100,000 pages). A worker still running at the forkserver's last sample counts by its
    own last sample."""
    counted = sum(p.cpu_s for p in roles["other"])
    for forkserver in roles["forkserver"]:
        children = [p for p in roles["workers"] if p.ppid == forkserver.pid]
        running = [p for p in children if p.last_seen >= forkserver.last_seen]
        counted += forkserver.children_cpu_s + sum(p.cpu_s for p in running)
    return counted


def cpu_breakdown(tree: TreeResult, stages: dict[str, Any]) -> dict[str, float]:
    roles = classify_procs(tree)
    crawl = roles["crawl"][0]
    main_thread = crawl.threads_cpu_s.get(crawl.pid, 0.0)
    other_threads = sum(cpu for tid, cpu in crawl.threads_cpu_s.items() if tid != crawl.pid)
    timed = {name: value["cpu_s"] for name, value in stages["stages"].items()}
    dedup = timed.get("dedup", 0.0) + timed.get("dedup.skip_stored_lookup", 0.0)
    store = timed.get("store", 0.0)
    small = timed.get("classify", 0.0) + timed.get("canonical", 0.0) + timed.get("failures", 0.0)
    workers = workers_cpu_s(roles)
    forkserver = sum(p.cpu_s for p in roles["forkserver"])
    breakdown = {
        "download_and_parse": max(0.0, main_thread - dedup - store - small),
        "extraction_workers": workers + forkserver,
        "extraction_handoff": other_threads,
        "dedup": dedup,
        "storage_and_search_index": store,
        "classify_and_canonical": small,
    }
    breakdown["total_sampled"] = sum(breakdown.values())
    breakdown["total_wait4"] = tree.tree_cpu_s
    breakdown["store_sqlite_and_fts"] = timed.get("store.sqlite_and_fts", 0.0)
    breakdown["store_raw_html_compress"] = timed.get("store.raw_html_compress", 0.0)
    return breakdown


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / ticks, idle / ticks


def run_crawl(
    site: ServedSite, seeds: tuple[list[str], list[str]], work: Path, args: argparse.Namespace, profile: Path | None
) -> dict:
    write_sources(work / "sources.toml", *seeds)
    diagnostics = (MEM_TRACE,) * args.trace_memory + (MEM_SPIKES,) * args.watch_spikes
    command = crawl_command(work, args.concurrency, args.workers, dict(args.set), diagnostics)
    exclude = None
    if profile is not None:
        pyspy = PEERS_VENV / "bin" / "py-spy"
        command = [str(pyspy), "record", "--subprocesses", "--rate", "50", "--format", "raw",
                   "--output", str(profile), "--", *command]  # fmt: skip
        exclude = r"py-spy"
    server_before = site.stats()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    busy_before, idle_before = machine_cpu()
    with open(work / "crawl.stderr", "w") as stderr:
        tree = run_measured(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                            exclude=exclude)  # fmt: skip
    if profile is not None:
        # py-spy is the top process: measure from the crawl process it started
        crawl_pid = next(p.pid for p in tree.procs.values() if p.ppid == tree.top_pid)
        tree.top_pid = crawl_pid
    server_after = site.stats()
    busy_after, idle_after = machine_cpu()
    if tree.returncode != 0 or not (work / "stages.json").exists():
        tail = (work / "crawl.stderr").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"crawl failed (exit {tree.returncode}):\n{tail}")
    stages = json.loads((work / "stages.json").read_text())
    roles = classify_procs(tree)
    return {
        "command": command,
        "wall_s": tree.wall_s,
        "returncode": tree.returncode,
        "stages": stages,
        "cpu": cpu_breakdown(tree, stages),
        "memory": {
            "peak_rss_sum_mb": tree.peak_rss_sum_mb,
            "peak_pss_sum_mb": tree.peak_pss_sum_mb,
            "peak_pss_at_s": tree.peak_pss_at_s,
            "per_process": [
                {
                    "role": role,
                    "pid": p.pid,
                    "hwm_mb": p.hwm_mb,
                    "max_rss_mb": p.max_rss_mb,
                    "max_pss_mb": p.max_pss_mb,
                    "max_pss_at_s": p.max_pss_at_s,
                    "cpu_s": p.cpu_s,
                }
                for role, procs in roles.items()
                for p in procs
            ],
            "timeline": tree.timeline[:: max(1, len(tree.timeline) // 60)],
        },
        "server": {
            "requests": server_after["requests"] - server_before["requests"] - 1,
            "cpu_s": server_after["cpu_seconds"] - server_before["cpu_seconds"],
        },
        "samples": tree.samples,
        # Were the cores saturated? Idle cores during the crawl mean our pipeline, not the CPU, limited it.
        "machine": {
            "busy_cores": (busy_after - busy_before) / tree.wall_s,
            "idle_cores": (idle_after - idle_before) / tree.wall_s,
            "pipeline_cores": cpu_breakdown(tree, stages)["total_sampled"] / tree.wall_s,
        },
    }


def crawl_counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        run = conn.execute(
            "SELECT requests, articles_new, articles_duplicate, not_articles, failures FROM crawl_runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        fts = conn.execute("SELECT count(*) FROM articles_fts").fetchone()[0]
    finally:
        conn.close()
    keys = ("requests", "articles_new", "articles_duplicate", "not_articles", "failures")
    return {**dict(zip(keys, run, strict=True)), "fts_rows": fts}


# --- one N -----------------------------------------------------------------------------------


def site_name(
    n: int,
    sitemap_size: int = SITEMAP_LIMIT,
    sitemap_style: str = "files",
    pages: str = "generated",
    sites: int | None = None,
) -> str:
    """bench/out/NAME of the site: one per parameter set, so each stays cached."""
    if pages == "real":
        return realsite.site_dir_name(n, sites)
    name = f"site-{n}" if sitemap_size == SITEMAP_LIMIT else f"site-{n}-sitemaps-of-{sitemap_size}"
    return name if sitemap_style == "files" else f"{name}-{sitemap_style}"


def result_name(n: int, sitemap_style: str = "files", pages: str = "generated", sites: int | None = None) -> str:
    if pages == "real":
        return f"throughput-real-{n}" + (f"-on-{sites}-sites" if sites else "") + ".json"
    return f"throughput-{n}.json" if sitemap_style == "files" else f"throughput-{n}-{sitemap_style}.json"


def prepare_site(n: int, pages: str, args: argparse.Namespace) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    """(directory, summary, manifest) of the site for N, built if it is not there yet."""
    site_dir = OUT / site_name(n, args.sitemap_size, args.sitemap_style, pages, args.sites)
    print(f"[N={n}] {pages} site in {site_dir}", file=sys.stderr)
    if pages == "real":
        meta = realsite.ensure_site(site_dir, n, args.dataset, progress=True, sites=args.sites)
        return site_dir, meta, realsite.read_manifest(site_dir)
    meta = ensure_site(site_dir, n, sitemap_size=args.sitemap_size, sitemap_style=args.sitemap_style, progress=True)
    return site_dir, meta, read_manifest(site_dir)


def run_one(n: int, pages_kind: str, args: argparse.Namespace) -> dict[str, Any]:
    site_dir, site_meta, manifest = prepare_site(n, pages_kind, args)
    real = pages_kind == "real"
    result: dict[str, Any] = {"articles": n, "pages": pages_kind, "sitemap_style": args.sitemap_style}
    result["site"] = site_meta
    hosts = tuple(site_meta.get("hosts", ("127.0.0.1",)))
    served = ServedSite(site_dir, host=hosts[0], hosts=hosts)
    with served as site, tempfile.TemporaryDirectory(prefix=f"bench-{n}-") as tmp:
        work = Path(tmp)
        seeds = seeds_of(site.base_url, site_meta, args.sitemap_style)
        port = int(site.base_url.rsplit(":", 1)[1]) if site.base_url.count(":") == 2 else 80
        pages = (
            realsite.first_cycle(site_dir, manifest, port)
            if real
            else sample_pages(site_dir, manifest, min(n, args.raw_sample), site.base_url)
        )
        print(f"[N={n}] extraction rates on {len(pages)} pages ...", file=sys.stderr)
        before = extraction_rates(pages)
        print(f"[N={n}] crawling {len(seeds[0])} sitemap index(es) from {site.base_url} ...", file=sys.stderr)
        crawl = run_crawl(site, seeds, work, args, None)
        after = extraction_rates(pages)
        result["extraction"] = {
            "sample_pages": len(pages),
            **{key: statistics.mean([before[key], after[key]]) for key in before if key != "pages"},
            "before": before,
            "after": after,
        }
        result["crawl"] = crawl
        result["counts"] = crawl_counts(work / "news.db")
        records = stored_records(work / "news.db")
        if real:
            result["quality"] = realsite.judge(records, manifest, realsite.load_dataset(args.dataset))
        else:
            result["quality"] = judge(records, manifest)
        if args.trace_memory:
            shutil.copy(work / "memtrace.json", OUT / f"memtrace-{n}.json")
        if args.watch_spikes:
            shutil.copy(work / "memspikes.json", OUT / f"memspikes-{n}.json")
        if args.keep:
            shutil.copytree(work, OUT / f"crawl-{pages_kind}-{n}", dirs_exist_ok=True)
        if args.profile:
            print(f"[N={n}] profiling a second crawl with py-spy ...", file=sys.stderr)
            profile_work = work / "profile"
            profile_work.mkdir()
            raw_profile = OUT / f"profile-{pages_kind}-{n}.txt"
            run_crawl(site, seeds, profile_work, args, raw_profile)
            result["profile"] = summarize_profile(raw_profile)
        if args.peers and not real:
            from bench.peers import run_peers

            result["peers"] = run_peers(
                site_dir, manifest, work / "peers", concurrency=args.concurrency, sitemap_style=args.sitemap_style
            )
    result["rates"] = derive_rates(result)
    return result


def derive_rates(result: dict[str, Any]) -> dict[str, Any]:
    """Rates and ratios from a run's raw measurements (also for runs saved by an older version)."""
    crawl, ext = result["crawl"], result["extraction"]
    stages = crawl["stages"]
    new = result["counts"]["articles_new"]
    wall = crawl["wall_s"]
    steady = None
    if stages["first_stored_s"] is not None and stages["last_stored_s"] > stages["first_stored_s"]:
        steady = (stages["stored_new"] - 1) / (stages["last_stored_s"] - stages["first_stored_s"])
    cpu_per_article = crawl["cpu"]["total_sampled"] / max(1, new)
    cores = os.cpu_count() or 1
    raw_wall = ext.get("raw_wall_per_s")
    return {
        "stored_per_s": new / wall,
        "steady_stored_per_s": steady,
        # the literal ratio: our wall rate over trafilatura's wall rate, both under the same load
        "ratio_wall": new / wall / raw_wall if raw_wall else None,
        # what the cores would give if they were ours alone: cores / CPU per article, over
        # trafilatura's CPU-time rate (the pipeline is CPU-bound on this machine)
        "cpu_ms_per_article": 1000 * cpu_per_article,
        "projected_per_s": cores / cpu_per_article,
        "ratio_projected": cores / cpu_per_article / ext["raw_per_s"],
        "correct_stored": result["quality"]["correct"],
    }


# --- the profile -------------------------------------------------------------------------------


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample counts per function from py-spy's collapsed stacks, per process."""
    per_process: dict[str, dict[str, Any]] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        process = frames[0]
        entry = per_process.setdefault(process, {"samples": 0, "self": {}, "inclusive": {}})
        n = int(count)
        entry["samples"] += n
        functions = [_frame_name(f) for f in frames[1:]]
        if functions:
            entry["self"][functions[-1]] = entry["self"].get(functions[-1], 0) + n
        for function in set(functions):
            entry["inclusive"][function] = entry["inclusive"].get(function, 0) + n
    summary = {}
    for process, entry in per_process.items():
        total = entry["samples"] or 1
        summary[process] = {
            "samples": entry["samples"],
            "self": [(f, round(100 * c / total, 1)) for f, c in _top(entry["self"], top)],
            "inclusive": [(f, round(100 * c / total, 1)) for f, c in _top(entry["inclusive"], top * 3)],
        }
    return summary


def _frame_name(frame: str) -> str:
    # py-spy frames look like "function (path/to/file.py:123)"
    match = re.match(r"(.*) \((.*?):?\d*\)$", frame)
    if not match:
        return frame
    function, file = match.groups()
    file = re.sub(r".*/site-packages/", "", file)
    file = re.sub(rf"^{re.escape(str(ROOT))}/", "", file)
    file = re.sub(r".*/lib/python3\.\d+/", "stdlib/", file)
    return f"{function} ({file.split(':')[0]})"


def _top(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: -kv[1])[:n]


# --- reporting ---------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        pass
    return f"{model or platform.processor()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def stage_rows(r: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(stage, CPU s, ms per stored article, % of the pipeline's CPU) for one run."""
    cpu = r["crawl"]["cpu"]
    n_new = r["counts"]["articles_new"] or 1
    total = cpu["total_sampled"] or 1
    labels = {
        "download_and_parse": "download and parse (reactor thread: Scrapy, HTTP, gzip, sitemaps, scheduling)",
        "extraction_workers": "extraction (worker processes)",
        "extraction_handoff": "extraction handoff (pool queue threads: pickling pages and results)",
        "dedup": "dedup (stored-URL lookups, body hash, near-duplicate index)",
        "storage_and_search_index": "storage and search index (SQLite, FTS5 triggers, raw-HTML compression)",
        "classify_and_canonical": "classify and canonical URL",
    }
    return [(label, cpu[key], 1000 * cpu[key] / n_new, 100 * cpu[key] / total) for key, label in labels.items()]


def style_note(r: dict[str, Any]) -> str:
    """What the report adds after N for a run's sitemap style: "(query sitemaps)" for a query-style
    site, nothing for the files style, which every run saved before there were styles (no
    "sitemap_style" key) was on, so their report is unchanged."""
    style = r.get("sitemap_style", "files")
    return "" if style == "files" else f" ({style} sitemaps)"


def run_name(r: dict[str, Any]) -> str:
    """How the report names a run: N, which pages (runs saved before there were real pages have no
    "pages" key and are named as before), then its label and sitemap style if any."""
    pages = {"real": " real pages", "generated": " generated"}.get(r.get("pages", ""), "")
    if sites := (r.get("site") or {}).get("sites"):
        pages += f" on {sites} sites"
    return f"{r['articles']:,}{pages} {r.get('label', '')}".strip() + style_note(r)


def print_result(r: dict[str, Any]) -> None:
    c = r["crawl"]
    rates = r["rates"]
    ext = r["extraction"]
    style = r.get("sitemap_style", "files")
    index = (r.get("site") or {}).get("sitemap_index") or sitemap_index_path(style)
    where = f"{style} sitemaps, index {index}"
    if r.get("pages") == "real":
        where = f"real pages, {len(r['site']['hosts'])} addresses"
    print(f"\nN={r['articles']} ({where}): {r['counts']['articles_new']} stored "
          f"in {c['wall_s']:.1f}s "
          f"= {rates['stored_per_s']:.1f}/s (steady {rates['steady_stored_per_s'] or 0:.1f}/s); "
          f"trafilatura alone {ext.get('raw_wall_per_s', 0):.1f}/s wall, {ext['raw_per_s']:.1f}/s CPU; "
          f"ratio (wall) {rates.get('ratio_wall', 0):.2f}, projected on idle cores "
          f"{rates.get('ratio_projected', 0):.2f}")  # fmt: skip
    for label, seconds, per_article, share in stage_rows(r):
        print(f"  {label[:40]:40} {seconds:8.1f} s  {per_article:7.2f} ms/article  {share:5.1f}%")
    m = c["memory"]
    print(f"  peak memory: sum RSS {m['peak_rss_sum_mb']:.0f} MB, sum PSS {m['peak_pss_sum_mb']:.0f} MB "
          f"(at {m.get('peak_pss_at_s', 0):.0f} s of {c['wall_s']:.0f}); "
          + ", ".join(f"{p['role']} {p['hwm_mb']:.0f}" for p in m["per_process"]))  # fmt: skip
    crawl = [p for p in m["per_process"] if p["role"] == "crawl"]
    if crawl and "max_pss_at_s" in crawl[0]:
        print(f"  crawl process: largest PSS {crawl[0]['max_pss_mb']:.0f} MB at {crawl[0]['max_pss_at_s']:.0f} s")
    if "machine" in c:
        print("  cores during the crawl: " + ", ".join(f"{k} {v:.2f}" for k, v in c["machine"].items()))
    print(f"  quality: {r['quality']}")
    for name, peer in (r.get("peers") or {}).items():
        print(f"  peer {name}: { {k: v for k, v in peer.items() if k != 'commands'} }")


def render_section(results: list[dict[str, Any]], command: str, notes: str = "", heading: str = RESULTS_HEADING) -> str:
    out = [heading, ""]
    out.append(f"Machine: {machine()}. Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    out.append("")
    if len(results) == 1:
        out.append(f"Command: `{results[0].get('command_line') or command}`")
    else:
        out.append("Commands:")
        out.append("")
        for r in results:
            out.append(f"- N={run_name(r)}: `{r.get('command_line') or command}`")
    out.append("")
    out.append("The machine is shared with other jobs, so wall-clock rates vary between runs; *cores ours / busy*")
    out.append("says how much of the machine the crawl had and how busy it was in all (2.00 = both cores).")
    out.append("Ratios are taken within one run. *Wall ratio*")
    out.append("= our stored/s over trafilatura's pages/s timed in the same run under the same load.")
    out.append("*Projected* = what the machine's cores would give if the pipeline had them alone (cores ÷")
    out.append("the pipeline's CPU seconds per article), over trafilatura's CPU-time rate.")
    out.append("")
    out.append("| N | stored (correct) | wall s | stored/s | trafilatura alone /s (wall) | wall ratio "
               "| pipeline CPU ms/article | trafilatura CPU ms/page | projected /s | projected ratio "
               "| peak RSS sum MB | peak PSS sum MB | storage % CPU | cores ours / busy |")  # fmt: skip
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rates, ext, mem = r["rates"], r["extraction"], r["crawl"]["memory"]
        store_share = next(row[3] for row in stage_rows(r) if row[0].startswith("storage"))
        raw_wall = ext.get("raw_wall_per_s")
        wall_cells = f"{raw_wall:.1f} | {rates['ratio_wall']:.2f}" if raw_wall else "n/a | n/a"
        machine_use = r["crawl"].get("machine")
        cores = f"{machine_use['pipeline_cores']:.2f} / {machine_use['busy_cores']:.2f}" if machine_use else "n/a"
        out.append(
            f"| {run_name(r)} "
            f"| {r['counts']['articles_new']:,} ({r['quality']['correct']:,}) "
            f"| {r['crawl']['wall_s']:.0f} | {rates['stored_per_s']:.1f} "
            f"| {wall_cells} "
            f"| {rates['cpu_ms_per_article']:.1f} | {1000 / ext['raw_per_s']:.1f} "
            f"| {rates['projected_per_s']:.1f} | {rates['ratio_projected']:.2f} "
            f"| {mem['peak_rss_sum_mb']:.0f} | {mem['peak_pss_sum_mb']:.0f} | {store_share:.1f} "
            f"| {cores} |"
        )
    out.append("")
    out.append("CPU by stage (ms per stored article, share of the pipeline's CPU):")
    out.append("")
    out.append("| stage | " + " | ".join(f"N={run_name(r)}" for r in results) + " |")
    out.append("|---|" + "---|" * len(results))
    rows = [stage_rows(r) for r in results]
    for i, (label, *_rest) in enumerate(rows[0]):
        out.append(f"| {label} | " + " | ".join(f"{rr[i][2]:.2f} ms ({rr[i][3]:.1f}%)" for rr in rows) + " |")
    out.append("")
    out.append("Peak memory per process (VmHWM / largest Pss, MB):")
    out.append("")
    # Workers are replaced when pages grow them (crawl/worker_pool.py): how many were started, and the
    # largest of them.
    out.append("| N | " + " | ".join(("crawl", "forkserver", "workers started", "largest worker", "other")) + " |")
    out.append("|---|---|---|---|---|---|")
    for r in results:
        by_role: dict[str, list[dict[str, Any]]] = {}
        for p in r["crawl"]["memory"]["per_process"]:
            by_role.setdefault(p["role"], []).append(p)

        def sizes(procs: list[dict[str, Any]]) -> str:
            return ", ".join(f"{p['hwm_mb']:.0f} / {p['max_pss_mb']:.0f}" for p in procs) or "-"

        workers = by_role.get("workers", [])
        largest = [max(workers, key=lambda p: p["max_pss_mb"])] if workers else []
        cells = [sizes(by_role.get("crawl", [])), sizes(by_role.get("forkserver", [])), str(len(workers)),
                 sizes(largest), sizes(by_role.get("other", []))]  # fmt: skip
        out.append(f"| {run_name(r)} | " + " | ".join(cells) + " |")
    real = [r for r in results if r.get("pages") == "real"]
    if real:
        out += ["", "Real pages against the dataset's truth (bench/realsite.py's judge, one record per copy):", ""]
        out.append("| N | stored / N | title | authors | date | body (>= 80 % of words) | own sentence | all five "
                   "| pages whose copies were not all stored (copies lost) |")  # fmt: skip
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in real:
            q, n = r["quality"], r["articles"]
            lost = ", ".join(f"{page} ({count})" for page, count in q["lost_by_page"].items()) or "none"
            cells = [f"{q[k]:,} ({q[k] / q['distinct_articles']:.1%})" if q["distinct_articles"] else "0"
                     for k in ("title", "authors", "date", "body", "marker", "correct")]  # fmt: skip
            stored = f"{q['distinct_articles']:,} / {n:,} = {q['distinct_articles'] / n:.3f}"
            out.append(f"| {run_name(r)} | {stored} | " + " | ".join(cells) + f" | {lost} |")
    peers = [r for r in results if r.get("peers")]
    if peers:
        out.append("")
        out.append("Peers, same site, same run (after our crawl):")
        out.append("")
        out.append("| N | crawler | stored | distinct articles | correct | duplicates | not articles | wall s "
                   "| stored/s | CPU s | peak RSS sum MB | peak PSS sum MB |")  # fmt: skip
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in peers:
            q = r["quality"]
            n_cell = f"{r['articles']:,}{style_note(r)}"
            out.append(
                f"| {n_cell} | ours (scrapy crawl news) | {q['records']:,} | {q['distinct_articles']:,} "
                f"| {q['correct']:,} | {q['duplicates']} | {q['not_articles']} | {r['crawl']['wall_s']:.0f} "
                f"| {r['rates']['stored_per_s']:.1f} | {r['crawl']['cpu']['total_sampled']:.0f} "
                f"| {r['crawl']['memory']['peak_rss_sum_mb']:.0f} | {r['crawl']['memory']['peak_pss_sum_mb']:.0f} |"
            )
            for peer in r["peers"].values():
                if "error" in peer and "quality" not in peer:
                    out.append(f"| {n_cell} | {peer['peer']} | failed: {peer['error']} |||||||||")
                    continue
                pq = peer["quality"]
                out.append(
                    f"| {n_cell} | {peer['peer']} | {peer['stored']:,} | {pq['distinct_articles']:,} "
                    f"| {pq['correct']:,} | {pq['duplicates']} | {pq['not_articles']} | {peer['wall_s']:.0f} "
                    f"| {peer['stored_per_s']:.1f} | {peer['cpu_s']:.0f} | {peer['peak_rss_sum_mb']:.0f} "
                    f"| {peer['peak_pss_sum_mb']:.0f} |"
                )
    if notes:
        out += ["", notes.strip()]
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, action="append", default=[], help="N (repeatable)")
    parser.add_argument("--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS_PER_DOMAIN")
    parser.add_argument("--workers", type=int, help="NEWS_EXTRACT_WORKERS (default: the project's setting)")
    parser.add_argument(
        "--set",
        type=lambda text: tuple(text.split("=", 1)),
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one more Scrapy setting for the crawl ({work} is its work directory), e.g. JOBDIR={work}/job",
    )
    parser.add_argument(
        "--sitemap-size",
        type=int,
        default=SITEMAP_LIMIT,
        help="URLs per article sitemap of the generated site (default: the protocol's limit, 50,000)",
    )
    parser.add_argument(
        "--sitemap-style",
        choices=SITEMAP_STYLES,
        default="files",
        help="where the generated site's sitemaps live: files (/sitemap_index.xml, /sitemaps/*.xml) or query "
        "(Arc XP: /arc/outboundfeeds/sitemap-index/?outputType=xml, ...); default: %(default)s",
    )
    parser.add_argument(
        "--pages",
        choices=("generated", "real", "both"),
        default="generated",
        help="the generated site, the news-pages dataset's real pages cycled to N, or both (real first) for each N",
    )
    parser.add_argument(
        "--dataset", type=Path, default=realsite.DEFAULT_DATASET, help="the news-pages folder (for --pages real)"
    )
    parser.add_argument(
        "--sites",
        type=int,
        help="real pages spread over this many sites (addresses), so runs of different N crawl as many sites "
        "(default: one site per 257 pages)",
    )
    parser.add_argument(
        "--raw-sample", type=int, default=400, help="generated pages timed for the raw rate (real: one whole cycle)"
    )
    parser.add_argument("--peers", action="store_true", help="also run trafilatura's CLI and news-please")
    parser.add_argument("--profile", action="store_true", help="also profile one crawl with py-spy")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="diagnosis only (slows the crawl): tracemalloc checkpoints to bench/out/memtrace-N.json",
    )
    parser.add_argument(
        "--watch-spikes",
        action="store_true",
        help="diagnosis: what the crawl process runs when its memory jumps, to bench/out/memspikes-N.json",
    )
    parser.add_argument("--keep", action="store_true", help="keep the crawl's DB and logs in bench/out")
    parser.add_argument("--results", type=Path, help="write the summary section into this Markdown file")
    parser.add_argument("--label", default="", help="names this code tree in the report (e.g. a patch)")
    parser.add_argument("--notes", type=Path, help="Markdown appended to the section (analysis)")
    parser.add_argument(
        "--report-from", type=Path, nargs="+", help="no runs: write the section from saved throughput-N.json"
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the site server and a running crawl are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    OUT.mkdir(parents=True, exist_ok=True)
    notes = args.notes.read_text(encoding="utf-8") if args.notes else ""
    if args.report_from:
        results = [json.loads(path.read_text(encoding="utf-8")) for path in args.report_from]
        for result in results:
            result["rates"] = derive_rates(result)
        command = "python bench/throughput.py --report-from " + " ".join(str(p) for p in args.report_from)
        if args.results:
            heading = REAL_RESULTS_HEADING if any(r.get("pages") == "real" for r in results) else RESULTS_HEADING
            write_section(args.results, heading, render_section(results, command, notes, heading))
        return 0
    command = "python bench/throughput.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = []
    kinds = ["real", "generated"] if args.pages == "both" else [args.pages]
    if "real" in kinds and not (args.dataset / "truth.jsonl").is_file():
        print(f"error: the news-pages dataset is not at {args.dataset}; pass --dataset DIR", file=sys.stderr)
        return 2
    for n in args.articles:
        for kind in kinds:
            result = run_one(n, kind, args)
            result["command_line"] = command
            result["label"] = args.label
            (OUT / result_name(n, args.sitemap_style, kind, args.sites)).write_text(
                json.dumps(result, indent=1, default=str), encoding="utf-8"
            )
            print_result(result)
            results.append(result)
    if args.results:
        heading = RESULTS_HEADING if args.pages == "generated" else REAL_RESULTS_HEADING
        write_section(args.results, heading, render_section(results, command, notes, heading))
    return 0


if __name__ == "__main__":
    sys.exit(main())
