"""A site of real news pages for the throughput benchmark (bench/throughput.py --pages real).

    .venv/bin/python bench/realsite.py --articles 3000 [--sites S] [--dataset ../shared/datasets/news-pages] [--out DIR]

The pages are those of the news-pages dataset (../shared/datasets/news-pages: 258 real article pages
from 181 publishers, with truth.jsonl), read when the site is built: nothing of them is kept in the
project. They are cycled to N distinct articles: the 257 distinct ones (one page is a second crawl
of another's URL, see distinct_articles). Cycle k (copies k x 257 to (k + 1) x 257 - 1) lives
on a loopback address of its own (`cycle_host`: 127.0.0.1 to .254, then 127.0.1.1 ...), all on
one port of one server
(bench/siteserver.py), because the archive folds a site's near copies into aliases (MinHash
similarity >= archive.dedupe.COPY_THRESHOLD on the same site): one unique sentence would not keep
two copies of a page apart on one site, while archive.sites.site_of() takes each address for a
site of its own. So a crawl of N pages is one of N / 257 sites; with ``--sites S`` the copies are
spread over S addresses instead (copy k of page p on address (k + p) mod S; S at least
N / 257, so each page's copies are still on sites of their own), and runs of different N crawl as many sites.
Each copy has

- its own URL: http://<address s>:PORT/c<k><the original URL's path>, so the path still looks like
  the publisher's (dates in paths count for some extractors);
- its own canonical link, and og:url where the page has one, rewritten to that URL (a canonical link
  is added to a page without one), so the pipeline stores the copy under its own URL;
- one unique sentence (``MARKER``) put at the start of a body paragraph: the paragraph of the
  truth's body nearest its middle found as text right after a tag, outside scripts, or, on the few
  pages where none is (text only in scripts, or escaped differently), a paragraph of its own after
  ``<body>``.

Each address has its own sitemap index (/s<s>/sitemap_index.xml) and article sitemap; the
benchmark's source lists every address's index. The pack format is bench/sitegen.py's:
pages.bin and index.tsv, article pages gzip-compressed with ``{{PORT}}`` in their URLs (flag
``gztpl``, filled in by the server at start-up), sitemaps templated; ``manifest.jsonl`` has one row
per copy (path, host, dataset id, marker), ``meta.json`` the site's summary and its addresses.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import math
import re
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sitegen import CONTENT_TYPES, PackWriter, read_index

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "news-pages"
REALSITE_VERSION = 4
# 127.0.0.1 to 127.0.0.254, then 127.0.1.1 ... (Linux answers on all of 127.0.0.0/8)
HOSTS_PER_BLOCK = 254
MAX_HOSTS = 4 * HOSTS_PER_BLOCK
MARKER = "Benchmark copy {copy} of page {page} is article number {number} of this crawl."
SCRIPT_OPEN = re.compile(r"<script\b", re.IGNORECASE)
LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
META_TAG = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def cycle_host(cycle: int) -> str:
    block, host = divmod(cycle, HOSTS_PER_BLOCK)
    return f"127.0.{block}.{host + 1}"


def load_dataset(dataset: Path) -> list[dict[str, Any]]:
    """The dataset's truth records, in file order (each names its page, pages/<id>.html.gz)."""
    truth = dataset / "truth.jsonl"
    if not truth.exists():
        raise FileNotFoundError(f"{dataset} holds no news-pages dataset (truth.jsonl is missing)")
    with open(truth, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def distinct_articles(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(records to cycle, ids left out): a page fetched from the same URL as an earlier one is the
    same article crawled again (news-pages has the taz story twice, 2023 and 2024), and the
    pipeline rightly folds the two into one record on one site, so it is left out of the cycle."""
    kept: dict[str, dict[str, Any]] = {}
    left_out = []
    for record in records:
        if record["url"] in kept:
            left_out.append(record["id"])
        else:
            kept[record["url"]] = record
    return list(kept.values()), left_out


def read_page(dataset: Path, record: dict[str, Any]) -> str:
    return gzip.decompress((dataset / "pages" / f"{record['id']}.html.gz").read_bytes()).decode("utf-8", "replace")


def page_paths(records: list[dict[str, Any]]) -> dict[str, str]:
    """Dataset id -> the path its copies have after their cycle's prefix: the original URL's path
    (percent-encoded, no query), with the id added where two pages have the same path."""
    paths: dict[str, str] = {}
    for record in records:
        path = quote(unquote(urlsplit(record["url"]).path or "/"), safe="/-._~!$&'()*+,;=:@")
        if path in paths.values():
            path = path.rstrip("/") + "-" + quote(record["id"])
        paths[record["id"]] = path
    return paths


def _replace_attribute(tag: str, name: str, value: str) -> str:
    pattern = re.compile(rf"""(\s{name}\s*=\s*)(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
    replaced, count = pattern.subn(lambda m: f'{m.group(1)}"{value}"', tag, count=1)
    return replaced if count else tag


def _attribute(tag: str, name: str) -> str:
    match = re.search(rf"""\s{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", tag, re.IGNORECASE)
    return next((g for g in match.groups() if g is not None), "") if match else ""


def rewrite_urls(page: str, url: str) -> str:
    """The page with its canonical link and og:url naming `url` (a canonical link added if none)."""
    escaped = html.escape(url)
    found = False

    def link(match: re.Match[str]) -> str:
        nonlocal found
        tag = match.group(0)
        if "canonical" not in _attribute(tag, "rel").lower().split():
            return tag
        found = True
        return _replace_attribute(tag, "href", escaped)

    def meta(match: re.Match[str]) -> str:
        tag = match.group(0)
        if _attribute(tag, "property").lower() != "og:url" and _attribute(tag, "name").lower() != "og:url":
            return tag
        return _replace_attribute(tag, "content", escaped)

    page = META_TAG.sub(meta, LINK_TAG.sub(link, page))
    if not found:
        tag = f'<link rel="canonical" href="{escaped}">'
        end = HEAD_END.search(page)
        page = page[: end.start()] + tag + page[end.start() :] if end else tag + page
    return page


def _in_script(page: str, position: int) -> bool:
    opened = max((m.start() for m in SCRIPT_OPEN.finditer(page, 0, position)), default=-1)
    return opened > page.rfind("</script", 0, position) and opened >= 0


def marker_position(page: str, paragraphs: list[str]) -> int | None:
    """Where a body paragraph of the truth starts as text in the page's <body> (right after a tag,
    not inside a script), trying the middle paragraph first, then those nearest to it (the first
    is often a teaser that extractors leave out); None if none is found so."""
    body = BODY_TAG.search(page)
    start = body.end() if body else 0
    middle = len(paragraphs) // 2
    for _, paragraph in sorted(enumerate(paragraphs), key=lambda item: abs(item[0] - middle)):
        text = paragraph.strip()
        if len(text) < 20:
            continue
        for prefix in dict.fromkeys((text[:30], html.escape(text[:30], quote=False), html.escape(text[:30]))):
            at = page.find(prefix, start)
            while at >= 0:
                before = page[:at].rstrip()
                if before.endswith(">") and not _in_script(page, at):
                    return at
                at = page.find(prefix, at + 1)
    return None


def insert_marker(page: str, paragraphs: list[str], marker: str) -> tuple[str, bool]:
    """The page with `marker` at the start of a body paragraph; False if it had to get its own."""
    at = marker_position(page, paragraphs)
    if at is not None:
        return page[:at] + html.escape(marker) + " " + page[at:], True
    body = BODY_TAG.search(page)
    at = body.end() if body else 0
    return page[:at] + f"<p>{html.escape(marker)}</p>" + page[at:], False


def urlset(entries: list[tuple[str, str]]) -> str:
    urls = "".join(f"<url><loc>{html.escape(loc)}</loc><lastmod>{lastmod}</lastmod></url>" for loc, lastmod in entries)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def sitemap_index(locations: list[str]) -> str:
    maps = "".join(f"<sitemap><loc>{html.escape(loc)}</loc></sitemap>" for loc in locations)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'


def generate(
    out: Path, n: int, dataset: Path = DEFAULT_DATASET, progress: bool = False, sites: int | None = None
) -> dict[str, Any]:
    """Write the site of `n` copies into `out`; returns its summary (also written as meta.json).
    `sites`: spread the copies over this many addresses instead of one address per cycle (copy k
    of page p on address (k + p) mod sites), so that runs of different N can crawl as many sites."""
    records, left_out = distinct_articles(load_dataset(dataset))
    cycles = math.ceil(n / len(records))
    if n < 1 or cycles > MAX_HOSTS:
        raise ValueError(f"the site holds 1 to {MAX_HOSTS * len(records)} copies ({len(records)} pages per address)")
    if sites is not None and not cycles <= sites <= MAX_HOSTS:
        # A page's copies must each be on a site of their own (or they fold into one record):
        # copies 0 to cycles - 1 of page p are on addresses (k + p) mod sites, all distinct.
        raise ValueError(f"{n} copies need {cycles} to {MAX_HOSTS} sites")
    addresses = sites or cycles
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    started = time.monotonic()
    pages = {r["id"]: read_page(dataset, r) for r in records}
    paths = page_paths(records)
    pack = PackWriter(out)
    html_bytes = gz_bytes = in_paragraph = 0
    per_site: list[list[tuple[str, str]]] = [[] for _ in range(addresses)]
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for number in range(n):
            cycle, page_number = divmod(number, len(records))
            record = records[page_number]
            site = cycle if sites is None else (cycle + page_number) % sites
            host, path = cycle_host(site), f"/c{cycle}{paths[record['id']]}"
            url = f"http://{host}{{{{PORT}}}}{path}"
            marker = MARKER.format(copy=cycle + 1, page=record["id"], number=number + 1)
            page = rewrite_urls(pages[record["id"]], url)
            page, placed = insert_marker(page, record["body"].split("\n\n"), marker)
            in_paragraph += placed
            data = gzip.compress(page.encode("utf-8"), compresslevel=5, mtime=0)
            pack.add_bytes(path, data, "gztpl", CONTENT_TYPES["html"])
            html_bytes += len(page.encode("utf-8"))
            gz_bytes += len(data)
            per_site[site].append((url, record["published"]))
            manifest.write(json.dumps({"path": path, "host": host, "id": record["id"], "marker": marker}) + "\n")
            if progress and (number + 1) % 1000 == 0:
                print(f"  {number + 1}/{n} pages, {time.monotonic() - started:.0f}s", file=sys.stderr)
    for site, entries in enumerate(per_site):
        base = f"http://{cycle_host(site)}{{{{PORT}}}}/s{site}"
        pack.add(f"/s{site}/sitemap-articles.xml", urlset(entries), "xml", templated=True)
        pack.add(f"/s{site}/sitemap_index.xml", sitemap_index([f"{base}/sitemap-articles.xml"]), "xml", templated=True)
    pack.close()
    summary = {
        "kind": "real",
        "realsite_version": REALSITE_VERSION,
        "articles": n,
        "dataset": str(dataset),
        "dataset_pages": len(records),
        "left_out": left_out,
        "sites": sites,
        "hosts": [cycle_host(site) for site in range(addresses)],
        "sitemap_indexes": [f"/s{site}/sitemap_index.xml" for site in range(addresses)],
        "marker_in_a_paragraph": in_paragraph,
        "html_bytes": html_bytes,
        "mean_page_kb": round(html_bytes / n / 1024, 1),
        "gzip_bytes": gz_bytes,
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "meta.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def ensure_site(
    out: Path, n: int, dataset: Path = DEFAULT_DATASET, progress: bool = False, sites: int | None = None
) -> dict[str, Any]:
    """The site in `out`, built only if it is missing or was built otherwise."""
    meta_file = out / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        wanted = {"kind": "real", "realsite_version": REALSITE_VERSION, "articles": n, "dataset": str(dataset),
                  "sites": sites}  # fmt: skip
        if all(meta.get(k) == v for k, v in wanted.items()):
            return meta
    return generate(out, n, dataset, progress, sites)


def site_dir_name(n: int, sites: int | None = None) -> str:
    """bench/out/NAME of the site of `n` copies (on `sites` sites)."""
    return f"real-{n}" + (f"-on-{sites}-sites" if sites else "")


def read_manifest(root: Path) -> list[dict[str, Any]]:
    with open(root / "manifest.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def first_cycle(root: Path, manifest: list[dict[str, Any]], port: int) -> list[tuple[str, str]]:
    """(URL, HTML) of every page of the first cycle, as served on `port`: each dataset page once,
    so the mix is the crawl's (every page the same number of times, up to one partial cycle)."""
    index = read_index(root)
    port_text = "" if port == 80 else f":{port}"
    rows = [m for m in manifest if m["path"].startswith("/c0/")]
    pages = []
    with open(root / "pages.bin", "rb") as data:
        for row in rows:
            offset, length, _flags, _type = index[row["path"]]
            data.seek(offset)
            page = gzip.decompress(data.read(length)).decode("utf-8").replace("{{PORT}}", port_text)
            pages.append((f"http://{row['host']}{port_text}{row['path']}", page))
    return pages


def _norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text or "")).strip().casefold()


def _recall(truth: str, text: str) -> float:
    """Share of the truth body's words (\\w+ runs, as a multiset) found in the stored text."""
    wanted, found = Counter(re.findall(r"\w+", truth)), Counter(re.findall(r"\w+", text))
    return sum((wanted & found).values()) / max(1, sum(wanted.values()))


def judge(records: list[dict[str, Any]], manifest: list[dict[str, Any]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare stored records (url, title, authors, date, text) with the dataset's truth.

    A record belongs to the copy served at its URL's address and path. Per copy: its title equals
    the truth's (whitespace and case aside), its author set too, its date is the truth's day, its
    text holds at least 80 % of the truth body's words (*body*) and the copy's own sentence
    (*marker*: the text is this copy's). *correct* is all five. Dataset pages with copies served but
    not stored are listed with how many were lost.
    """
    copies = {(m["host"], unquote(m["path"])): m for m in manifest}
    by_id = {t["id"]: t for t in truth}
    seen: set[tuple[str, str]] = set()
    counts = dict.fromkeys(("title", "authors", "date", "body", "marker", "correct"), 0)
    duplicates = unknown = 0
    stored_per_page: Counter[str] = Counter()
    for record in records:
        parts = urlsplit(record["url"] or "")
        key = (parts.hostname or "", unquote(parts.path))
        copy = copies.get(key)
        if copy is None:
            unknown += 1
            continue
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        stored_per_page[copy["id"]] += 1
        expected = by_id[copy["id"]]
        checks = {
            "title": _norm(record["title"]) == _norm(expected["title"]),
            "authors": {_norm(a) for a in record["authors"]} == {_norm(a) for a in expected["authors"]},
            "date": (record["date"] or "")[:10] == expected["published"][:10],
            "body": _recall(expected["body"], record["text"] or "") >= 0.8,
            "marker": _norm(copy["marker"]) in _norm(record["text"]),
        }
        for name, ok in checks.items():
            counts[name] += ok
        counts["correct"] += all(checks.values())
    served_per_page = Counter(m["id"] for m in manifest)
    lost = {page: n - stored_per_page[page] for page, n in served_per_page.items() if n > stored_per_page[page]}
    return {
        "records": len(records),
        "distinct_articles": len(seen),
        "duplicates": duplicates,
        "not_articles": unknown,
        **counts,
        "lost_by_page": dict(sorted(lost.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the throughput benchmark's site of real news pages.")
    parser.add_argument("--articles", type=int, required=True)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="the news-pages folder")
    parser.add_argument("--sites", type=int, help="spread the copies over this many addresses (default: N / 257)")
    parser.add_argument("--out", type=Path, help="default: bench/out/real-N (real-N-on-S-sites)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "bench" / "out" / site_dir_name(args.articles, args.sites)
    print(json.dumps(generate(out, args.articles, args.dataset, progress=True, sites=args.sites), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
