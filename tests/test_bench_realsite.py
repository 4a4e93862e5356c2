"""bench/realsite.py: real pages cycled to N distinct articles, each cycle on its own loopback
address, each copy naming its own URL and carrying its own sentence; served by bench/siteserver.py.

The pages here are made up (the news-pages dataset is not needed): three "publishers", one of them
fetched twice from the same URL, as the dataset has one page twice."""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import realsite  # noqa: E402
from bench.served_site import ServedSite  # noqa: E402
from bench.throughput import seeds_of  # noqa: E402

BODY_A = ["The harbour council voted on Tuesday to rebuild the old stone quay.", "Work starts in spring."]
BODY_B = ["Rain closed the mountain pass for the third day running this week.", "Drivers were turned back."]
PAGES = {
    "xx_Harbour_2024_01_02": (
        "https://harbour.example/news/2024/01/02/quay-vote",
        '<html><head><title>Quay vote</title><link href="https://harbour.example/news/2024/01/02/quay-vote"'
        ' rel="canonical"><meta content="https://harbour.example/q" property="og:url"></head>'
        "<body><h1>Quay vote</h1><p>\n  " + BODY_A[0] + "</p><p>" + BODY_A[1] + "</p></body></html>",
        BODY_A,
    ),
    "xx_Pass_2024_02_03": (
        "https://pass.example/weather/pass-closed?ref=rss",
        "<html><head><title>Pass closed</title><script>var body = '" + BODY_B[0] + "';</script></head>"
        "<body><div>" + BODY_B[0] + "</div><p>" + BODY_B[1] + "</p></body></html>",
        BODY_B,
    ),
    "xx_Harbour_2024_05_06": (  # the first page again, fetched later from the same URL
        "https://harbour.example/news/2024/01/02/quay-vote",
        "<html><head><title>Quay vote</title></head><body><p>" + BODY_A[0] + "</p></body></html>",
        BODY_A,
    ),
}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "news-pages"
    (root / "pages").mkdir(parents=True)
    with open(root / "truth.jsonl", "w", encoding="utf-8") as truth:
        for page_id, (url, page, body) in PAGES.items():
            (root / "pages" / f"{page_id}.html.gz").write_bytes(gzip.compress(page.encode()))
            record = {"id": page_id, "url": url, "title": "T " + page_id, "authors": ["Ann Example"],
                      "published": "2024-01-02T10:00:00+00:00", "body": "\n\n".join(body)}  # fmt: skip
            truth.write(json.dumps(record) + "\n")
    return root


def test_a_page_fetched_again_from_the_same_url_is_left_out(dataset: Path) -> None:
    records, left_out = realsite.distinct_articles(realsite.load_dataset(dataset))
    assert [r["id"] for r in records] == ["xx_Harbour_2024_01_02", "xx_Pass_2024_02_03"]
    assert left_out == ["xx_Harbour_2024_05_06"]


def test_canonical_and_og_url_name_the_copy_whatever_the_markup() -> None:
    url = "http://127.0.0.2{{PORT}}/c1/a"
    page = realsite.rewrite_urls(PAGES["xx_Harbour_2024_01_02"][1], url)
    assert f'href="{url}"' in page
    assert f'content="{url}"' in page
    assert "harbour.example" not in page
    single = realsite.rewrite_urls("<head><link rel='canonical' href='https://x.example/'></head>", url)
    assert single == f"<head><link rel='canonical' href=\"{url}\"></head>"
    added = realsite.rewrite_urls("<html><head><title>t</title></head><body></body></html>", url)
    assert f'<link rel="canonical" href="{url}"></head>' in added
    other = '<link rel="alternate" href="https://x.example/amp">'
    # only a canonical link is rewritten; a page without <head> gets one in front
    assert realsite.rewrite_urls(other, url) == f'<link rel="canonical" href="{url}">' + other


def test_the_sentence_goes_into_a_body_paragraph_not_a_script(dataset: Path) -> None:
    _url, page, body = PAGES["xx_Pass_2024_02_03"]
    marked, in_paragraph = realsite.insert_marker(page, body[:1], "Copy 7.")  # the script has it first
    assert in_paragraph
    assert "<div>Copy 7. " + BODY_B[0] in marked
    assert "var body = '" + BODY_B[0] in marked
    middle, _ = realsite.insert_marker(page, [BODY_B[0], BODY_B[1], "a third paragraph not on the page"], "Copy 9.")
    assert "<p>Copy 9. " + BODY_B[1] in middle  # the middle paragraph first: the first is often a teaser
    bare, in_paragraph = realsite.insert_marker("<html><body><p>Short.</p></body></html>", ["Short."], "Copy 8.")
    assert not in_paragraph
    assert "<body><p>Copy 8.</p><p>Short.</p>" in bare


def test_each_cycle_is_served_on_its_own_address_and_each_copy_names_itself(dataset: Path, tmp_path: Path) -> None:
    meta = realsite.generate(tmp_path / "site", 5, dataset)
    assert meta["hosts"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]  # 2 distinct pages a cycle
    assert meta["left_out"] == ["xx_Harbour_2024_05_06"]
    assert meta["marker_in_a_paragraph"] == 5
    manifest = realsite.read_manifest(tmp_path / "site")
    assert [(m["host"], m["id"]) for m in manifest] == [
        ("127.0.0.1", "xx_Harbour_2024_01_02"),
        ("127.0.0.1", "xx_Pass_2024_02_03"),
        ("127.0.0.2", "xx_Harbour_2024_01_02"),
        ("127.0.0.2", "xx_Pass_2024_02_03"),
        ("127.0.0.3", "xx_Harbour_2024_01_02"),
    ]
    assert manifest[3]["path"] == "/c1/weather/pass-closed"  # the original path, without its query
    with ServedSite(tmp_path / "site", host=meta["hosts"][0], hosts=tuple(meta["hosts"])) as site:
        sitemaps, feeds = seeds_of(site.base_url, meta)
        port = site.base_url.rsplit(":", 1)[1]
        assert sitemaps[1] == f"http://127.0.0.2:{port}/s1/sitemap_index.xml"
        assert feeds == []
        index = urlopen(sitemaps[1], timeout=10).read().decode()
        child = re.findall(r"<loc>([^<]+)</loc>", index)
        assert child == [f"http://127.0.0.2:{port}/s1/sitemap-articles.xml"]
        urls = re.findall(r"<loc>([^<]+)</loc>", urlopen(child[0], timeout=10).read().decode())
        assert urls == [
            f"http://127.0.0.2:{port}/c1/news/2024/01/02/quay-vote",
            f"http://127.0.0.2:{port}{manifest[3]['path']}",
        ]
        page = urlopen(urls[0], timeout=10).read().decode()
        assert 'rel="canonical"' in page
        assert page.count(urls[0]) == 2
        assert manifest[2]["marker"] in page
        assert manifest[0]["marker"] not in page
        served = realsite.first_cycle(tmp_path / "site", manifest, int(port))
        assert [url for url, _ in served] == [f"http://127.0.0.1:{port}{m['path']}" for m in manifest[:2]]
        assert served[0][1] == urlopen(served[0][0], timeout=10).read().decode()


def test_copies_spread_over_a_number_of_sites_keep_each_page_s_copies_apart(dataset: Path, tmp_path: Path) -> None:
    """--sites: runs of different N crawl as many sites; a page's copies are still never on one site."""
    meta = realsite.generate(tmp_path / "site", 6, dataset, sites=4)
    assert meta["hosts"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    manifest = realsite.read_manifest(tmp_path / "site")
    assert [(m["host"], m["id"]) for m in manifest] == [
        ("127.0.0.1", "xx_Harbour_2024_01_02"),
        ("127.0.0.2", "xx_Pass_2024_02_03"),
        ("127.0.0.2", "xx_Harbour_2024_01_02"),
        ("127.0.0.3", "xx_Pass_2024_02_03"),
        ("127.0.0.3", "xx_Harbour_2024_01_02"),
        ("127.0.0.4", "xx_Pass_2024_02_03"),
    ]
    with ServedSite(tmp_path / "site", host=meta["hosts"][0], hosts=tuple(meta["hosts"])) as site:
        sitemaps, _ = seeds_of(site.base_url, meta)
        listed = []
        for index in sitemaps:
            (child,) = re.findall(r"<loc>([^<]+)</loc>", urlopen(index, timeout=10).read().decode())
            listed += re.findall(r"<loc>([^<]+)</loc>", urlopen(child, timeout=10).read().decode())
        port = site.base_url.rsplit(":", 1)[1]
        assert sorted(listed) == sorted(f"http://{m['host']}:{port}{m['path']}" for m in manifest)
        served = realsite.first_cycle(tmp_path / "site", manifest, int(port))
        assert [url for url, _ in served] == [f"http://{m['host']}:{port}{m['path']}" for m in manifest[:2]]
    with pytest.raises(ValueError, match="need 3 to"):
        realsite.generate(tmp_path / "too-few", 6, dataset, sites=2)


def test_past_254_sites_the_addresses_go_on_in_the_next_block(dataset: Path, tmp_path: Path) -> None:
    """A crawl of more than 254 sites (100,000 pages) runs on 127.0.1.1 and on, served like the rest."""
    assert [realsite.cycle_host(c) for c in (0, 253, 254, 600)] == [
        "127.0.0.1",
        "127.0.0.254",
        "127.0.1.1",
        "127.0.2.93",
    ]
    meta = realsite.generate(tmp_path / "site", 2 * 255, dataset)
    assert meta["hosts"][-2:] == ["127.0.0.254", "127.0.1.1"]
    last = realsite.read_manifest(tmp_path / "site")[-1]
    assert last["host"] == "127.0.1.1"
    with ServedSite(tmp_path / "site", host=meta["hosts"][0], hosts=tuple(meta["hosts"])) as site:
        port = site.base_url.rsplit(":", 1)[1]
        page = urlopen(f"http://127.0.1.1:{port}{last['path']}", timeout=10).read().decode()
        assert last["marker"] in page


def test_the_judge_counts_each_copy_once_and_names_the_pages_lost(dataset: Path, tmp_path: Path) -> None:
    realsite.generate(tmp_path / "site", 4, dataset)
    manifest = realsite.read_manifest(tmp_path / "site")
    truth = realsite.load_dataset(dataset)

    def record(copy: dict, **changes: object) -> dict:
        body = "\n\n".join(PAGES[copy["id"]][2])
        fields = {"url": f"http://{copy['host']}:8080{copy['path']}", "title": "t " + copy["id"],
                  "authors": ["Ann Example"], "date": "2024-01-02", "text": copy["marker"] + " " + body}  # fmt: skip
        return {**fields, **changes}

    records = [
        record(manifest[0]),
        record(manifest[0]),  # the same copy again
        record(manifest[1], text="Drivers were turned back."),  # no sentence of its own, few of the words
        record(manifest[2], title="Another title", authors=[]),
        {**record(manifest[2]), "url": "http://127.0.0.9:8080/elsewhere"},
    ]
    quality = realsite.judge(records, manifest, truth)
    assert (quality["records"], quality["distinct_articles"], quality["duplicates"], quality["not_articles"]) == (
        5,
        3,
        1,
        1,
    )
    assert (quality["title"], quality["authors"], quality["date"], quality["body"], quality["marker"]) == (
        2,
        2,
        3,
        2,
        2,
    )
    assert quality["correct"] == 1
    assert quality["lost_by_page"] == {"xx_Pass_2024_02_03": 1}


def test_throughput_on_real_pages_without_the_dataset_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import throughput

    status = throughput.main(["--articles", "10", "--pages", "real", "--dataset", str(tmp_path / "absent")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().splitlines() == [
        f"error: the news-pages dataset is not at {tmp_path / 'absent'}; pass --dataset DIR"
    ]
