r"""Peers on the generated site: trafilatura's command-line crawler and news-please.

Used by ``bench/throughput.py --peers``. Both run from their own virtualenv, bench/out/peers-venv
(git-ignored), so they never touch the project's pinned dependencies::

    .venv/bin/python -m venv bench/out/peers-venv
    bench/out/peers-venv/bin/pip install --upgrade pip
    bench/out/peers-venv/bin/pip install trafilatura==2.3.1 py-spy==0.4.3
    bench/out/peers-venv/bin/pip install news-please==1.6.16

Each peer gets the same politeness as our crawl: no delay between requests (trafilatura's
SLEEP_TIME = 0, news-please's Scrapy without delay, 16 requests per domain) and loopback allowed
(trafilatura's SSRF_PROTECTION = off). What each stored is read back from its output files and
judged against the site's manifest exactly as our database is (throughput.judge).

Each peer is given what a user would give it for the site's sitemap style (bench/sitegen.py):

- trafilatura: ``--sitemap {base}/sitemap_index.xml`` on a files-style site (its documentation's
  "already known sitemap URL"); the home page, ``--sitemap {base}/``, on a query-style (Arc XP)
  site (its documentation's first example, "link discovery through a sitemap" from the home page),
  where it reads the ``Sitemap:`` line of robots.txt. That is the fairest input: in
  trafilatura/sitemaps.py (2.3.1) ``sitemap_search`` takes its input as a sitemap only if it ends
  in ".gz", "sitemap" or ".xml", which ".../sitemap-index/?outputType=xml" does not; any other URL
  longer than the home page is "a subpart of the site" that "acts like a filter": it reads
  robots.txt, then keeps only the links containing that URL (courlan's ``filter_urls``), which
  leaves none (0 URLs, checked). From the home page it finds the index through robots.txt and
  reads it, but then every ``<loc>`` goes through ``SitemapObject.handle_link``, which queues a
  link as a sitemap only if it matches ``DETECT_SITEMAP_LINK = re.compile(r"\.xml(\..{2,4})?$|\.xml[?#]")``,
  a ".xml" at the end or before "?"/"#". In "/arc/outboundfeeds/sitemap/?outputType=xml&from=0"
  "xml" is only a query value, so the article sitemaps and the news sitemap are listed as pages
  (their query reordered by courlan, "?from=0&outputType=xml"), never read as sitemaps, and none of
  the articles they list is found. What trafilatura gets from such a site is the newest 200
  articles of its feed (``--feed``) plus whatever it extracts from the sitemaps fetched as pages.
- news-please: the home page in both styles (``SitemapCrawler`` and ``RssCrawler``). Its
  SitemapCrawler reads every ``Sitemap:`` line of robots.txt (``UrlExtractor.get_sitemap_urls``)
  and hands them to Scrapy's ``SitemapSpider``, which knows a sitemap by its response (an
  ``XmlResponse``, i.e. an XML content type, or gzip) and follows every ``<loc>`` of a
  ``<sitemapindex>`` as a sitemap whatever its URL, so the query style costs it nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.proctree import run_measured
from bench.served_site import ServedSite, judge

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "bench" / "out" / "peers-venv"
TIMEOUT_S = 3 * 3600


def _memory(tree: Any) -> dict[str, float]:
    return {
        "peak_rss_sum_mb": round(tree.peak_rss_sum_mb, 1),
        "peak_pss_sum_mb": round(tree.peak_pss_sum_mb, 1),
        "max_process_hwm_mb": round(max((p.hwm_mb for p in tree.procs.values()), default=0.0), 1),
    }


def _summary(name: str, records: list[dict[str, Any]], manifest: list[dict[str, Any]], wall: float,
             tree_cpu: float, memory: dict[str, float], commands: list[list[str]]) -> dict[str, Any]:  # fmt: skip

    quality = judge(records, manifest)
    return {
        "peer": name,
        "stored": len(records),
        "correct": quality["correct"],
        "wall_s": round(wall, 1),
        "stored_per_s": round(len(records) / wall, 2) if wall else 0.0,
        "cpu_s": round(tree_cpu, 1),
        **memory,
        "quality": quality,
        "commands": [" ".join(c) for c in commands],
    }


# --- trafilatura ------------------------------------------------------------------------------

TRAFILATURA_CONFIG = """[DEFAULT]
DOWNLOAD_TIMEOUT = 30
MAX_FILE_SIZE = 20000000
MIN_FILE_SIZE = 10
SLEEP_TIME = 0
USER_AGENTS =
COOKIE =
MAX_REDIRECTS = 2
SSRF_PROTECTION = off
INSECURE_SSL_FALLBACK = on
MIN_EXTRACTED_SIZE = 250
MIN_OUTPUT_SIZE = 1
MIN_OUTPUT_COMM_SIZE = 1
MAX_TREE_SIZE =
EXTRACTION_TIMEOUT = 30
MIN_DUPLCHECK_SIZE = 100
MAX_REPETITIONS = 2
EXTENSIVE_DATE_SEARCH = on
EXTERNAL_URLS = off
"""


def trafilatura_sitemap_input(base_url: str, sitemap_style: str = "files") -> str:
    """What trafilatura's ``--sitemap`` is given for a site of this style (see the module's docstring)."""
    if sitemap_style == "files":
        return f"{base_url}/sitemap_index.xml"
    if sitemap_style == "query":
        return f"{base_url}/"  # robots.txt names the index; the index's own URL would filter out everything
    raise ValueError(f"unknown sitemap style {sitemap_style!r}")


def run_trafilatura(
    base_url: str, manifest: list[dict[str, Any]], work: Path, sitemap_style: str = "files"
) -> dict[str, Any]:
    """trafilatura's URL discovery on the sitemap index (or, on a query-style site, the home page
    and so robots.txt) and the feed, then its downloader.

    `trafilatura --sitemap URL -o DIR` itself never finishes with courlan 1.4.0 (and 1.3.2): the
    compressed UrlStore it uses for sitemaps hands out the sitemap URL again and again, as
    ``UrlStore(compressed=True).get_download_urls()`` never marks a URL visited. So discovery runs
    with ``--list`` (which prints the URLs found) and the URLs are then fetched and extracted with
    ``-i LIST`` in the same CLI: the same code paths minus the broken store.
    """
    binary = PEERS_VENV / "bin" / "trafilatura"
    if not binary.exists():
        return {"peer": "trafilatura", "error": f"not installed: {binary} is missing (see bench/peers.py)"}
    out = work / "trafilatura-out"
    out.mkdir(parents=True, exist_ok=True)
    config = work / "trafilatura.cfg"
    config.write_text(TRAFILATURA_CONFIG, encoding="utf-8")
    found = work / "trafilatura-urls.txt"
    sitemap_input = trafilatura_sitemap_input(base_url, sitemap_style)
    discover = [
        [str(binary), "--sitemap", sitemap_input, "--list", "--config-file", str(config)],
        [str(binary), "--feed", f"{base_url}/feeds/rss.xml", "--list", "--config-file", str(config)],
    ]
    extract = [str(binary), "-i", str(found), "--json", "--with-metadata", "--no-comments",
               "--parallel", "2", "--config-file", str(config), "-o", str(out)]  # fmt: skip
    wall = cpu = 0.0
    peaks: list[dict[str, float]] = []
    errors = []
    with open(found, "w") as urls, open(work / "trafilatura.log", "a") as log:
        for command in [*discover, extract]:
            stdout = urls if command is not extract else log
            tree = run_measured(command, cwd=work, stdout=stdout, stderr=log, timeout=TIMEOUT_S)
            stdout.flush()
            wall += tree.wall_s
            cpu += tree.tree_cpu_s
            peaks.append(_memory(tree))
            if tree.returncode != 0:
                errors.append(f"{' '.join(command[1:3])} exited {tree.returncode}")
    records = []
    for path in sorted(out.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        records.append(
            {
                "url": doc.get("source") or doc.get("url") or "",
                "title": doc.get("title"),
                "authors": [a.strip() for a in re.split(r";|,(?= )", doc.get("author") or "") if a.strip()],
                "date": doc.get("date"),
                "text": doc.get("text") or doc.get("raw_text") or "",
            }
        )
    memory = {k: max(p[k] for p in peaks) for k in peaks[0]}
    result = _summary("trafilatura CLI", records, manifest, wall, cpu, memory, [*discover, extract])
    result["urls_discovered"] = sum(1 for line in found.read_text().splitlines() if line.strip())
    if errors:
        result["errors"] = errors
    return result


# --- news-please ------------------------------------------------------------------------------


def _news_please_config(work: Path, concurrency: int) -> Path:
    """news-please's default config, pointed at `work`, JSON output only, no politeness delay."""
    # the package lives in the peers venv, not ours: read its default config from disk
    packages = next(PEERS_VENV.glob("lib/python3*/site-packages"))
    default = (packages / "newsplease" / "config" / "config.cfg").read_text(encoding="utf-8")
    config_dir = work / "news-please-config"
    config_dir.mkdir(parents=True, exist_ok=True)
    text = default.replace("working_path = ~/news-please-repo/", f"working_path = {work / 'news-please-repo'}/")
    text = re.sub(
        r"ITEM_PIPELINES = \{[^}]*\}",
        "ITEM_PIPELINES = {'newsplease.pipeline.pipelines.ArticleMasterExtractor':100,\n"
        "                  'newsplease.pipeline.pipelines.JsonFileStorage':300}",
        text,
    )
    text = text.replace("CONCURRENT_REQUESTS_PER_DOMAIN=4", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}")
    text = text.replace("CONCURRENT_REQUESTS=16", f"CONCURRENT_REQUESTS={concurrency * 2}")
    (config_dir / "config.cfg").write_text(text, encoding="utf-8")
    return config_dir


def run_news_please(base_url: str, manifest: list[dict[str, Any]], work: Path, concurrency: int) -> dict[str, Any]:
    binary = PEERS_VENV / "bin" / "news-please"
    if not binary.exists():
        return {"peer": "news-please", "error": f"not installed: {binary} is missing (see bench/peers.py)"}
    config_dir = _news_please_config(work, concurrency)
    sites = {
        "base_urls": [
            {"url": f"{base_url}/", "crawler": "SitemapCrawler"},
            {"url": f"{base_url}/", "crawler": "RssCrawler"},
        ]
    }
    (config_dir / "sitelist.hjson").write_text(json.dumps(sites, indent=1), encoding="utf-8")
    command = [str(binary), "-c", str(config_dir), "-no-confirm"]
    started = time.time()
    with open(work / "news-please.log", "w") as log:
        tree = run_measured(command, cwd=work, stdout=log, stderr=log, timeout=TIMEOUT_S)
    files = sorted((work / "news-please-repo").rglob("*.json"))
    records = []
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        records.append(
            {
                "url": doc.get("url") or "",
                "title": doc.get("title"),
                "authors": doc.get("authors") or [],
                "date": doc.get("date_publish"),
                "text": doc.get("maintext") or "",
            }
        )
    # news-please's supervisor only checks every 10 s whether its crawlers are done: the last file
    # written tells when the work itself finished.
    active = (max(p.stat().st_mtime for p in files) - started) if files else tree.wall_s
    result = _summary("news-please", records, manifest, active, tree.tree_cpu_s, _memory(tree), [command])
    result["process_wall_s"] = round(tree.wall_s, 1)
    if tree.returncode != 0:
        result["errors"] = [f"exited {tree.returncode}: " + _tail(work / "news-please.log")]
    return result


def _tail(path: Path, chars: int = 600) -> str:
    return path.read_text(errors="replace")[-chars:].replace("\n", " | ") if path.exists() else ""


def run_peers(
    site: Path,
    manifest: list[dict[str, Any]],
    work: Path,
    *,
    concurrency: int = 16,
    sitemap_style: str | None = None,
) -> dict[str, Any]:
    """Both peers on the site, served on port 80 of a loopback address (see ServedSite).

    `sitemap_style` defaults to the one the site was generated with (its meta.json).
    """

    if sitemap_style is None:
        meta = site / "meta.json"
        sitemap_style = (
            json.loads(meta.read_text(encoding="utf-8")).get("sitemap_style", "files") if meta.exists() else "files"
        )
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    with _served_on_port_80(site, ServedSite) as served:
        base_url = served.base_url
        results = _run_all(base_url, manifest, work, concurrency, sitemap_style)
    shutil.rmtree(work / "news-please-repo" / "data", ignore_errors=True)
    return results


@contextlib.contextmanager
def _served_on_port_80(site: Path, served_site: Any) -> Iterator[Any]:
    # trafilatura rejects "http://127.0.0.1:PORT/..." as an invalid URL (courlan wants no port on
    # an IP address), so the peers get their own server on port 80 of the first free loopback address.
    for last in range(1, 20):
        server = served_site(site, host=f"127.0.0.{last}", port=80)
        try:
            server.__enter__()
        except RuntimeError:
            continue
        try:
            yield server
        finally:
            server.__exit__()
        return
    raise RuntimeError("no loopback address with a free port 80")


def _run_all(
    base_url: str, manifest: list[dict[str, Any]], work: Path, concurrency: int, sitemap_style: str
) -> dict[str, Any]:
    results = {}
    for name, runner in (
        ("trafilatura", lambda: run_trafilatura(base_url, manifest, work, sitemap_style)),
        ("news-please", lambda: run_news_please(base_url, manifest, work, concurrency)),
    ):
        try:
            results[name] = runner()
        except Exception as exc:  # a peer that breaks is reported, never fatal to our own numbers
            results[name] = {"peer": name, "error": f"{type(exc).__name__}: {exc}"}
    return results
