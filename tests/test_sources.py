"""The sources file: valid files load with defaults applied; every mistake names file, source and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from config.durations import parse_duration
from config.sources import SourceConfigError, adhoc_source, find_source, load_sources

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[defaults]
every = "30m"
max_age = "2d"

[[source]]
name = "alpha_news"
feeds = ["https://alpha.example/rss.xml"]

[[source]]
name = "beta"
sitemaps = ["https://www.beta.example/sitemap.xml"]
start_pages = ["https://www.beta.example/"]
allowed_domains = ["beta.example"]
cron = "*/20 6-23 * * *"
max_age = "6h"
article_deny = ["/live/"]
enabled = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads_with_defaults_and_overrides(tmp_path: Path) -> None:
    alpha, beta = load_sources(write(tmp_path, GOOD))
    assert alpha.name == "alpha_news"
    assert alpha.every == timedelta(minutes=30)
    assert alpha.max_age == timedelta(days=2)
    assert alpha.allowed_domains == ("alpha.example",)  # derived from the feed's host
    assert beta.cron == "*/20 6-23 * * *"
    assert beta.every is None  # a source's cron replaces the default interval
    assert beta.max_age == timedelta(hours=6)
    assert beta.allowed_domains == ("beta.example",)
    assert beta.article_deny == ("/live/",)
    assert beta.enabled is False


def test_shipped_sources_files_are_valid(tmp_path: Path) -> None:
    shipped = load_sources(ROOT / "sources.toml")
    assert len(shipped) >= 5
    assert all(s.feeds or s.sitemaps for s in shipped)
    template = (ROOT / "demo" / "sources.toml").read_text(encoding="utf-8")
    demo = load_sources(write(tmp_path, template.replace("{{BASE}}", "http://127.0.0.1:8765")))
    assert {s.name for s in demo} == {"courier_feeds", "courier_sitemaps", "courier_front"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('every = 30\nfeeds = ["https://a.example/rss"]', 'source "bad": field "every": expected a duration'),
        (
            'every = "30m"\nfeeds = ["ftp://a.example/rss"]',
            'source "bad": field "feeds": expected a list of http',
        ),
        ('every = "30m"\nfeeds = "https://a.example/rss"', 'source "bad": field "feeds": expected a list'),
        (
            'every = "30m"\nfeeds = ["https://a.example/rss"]\ncolour = "red"',
            'source "bad": field "colour": unknown',
        ),
        (
            'cron = "61 * * * *"\nfeeds = ["https://a.example/rss"]',
            'source "bad": field "cron": invalid crontab',
        ),
        (
            'every = "1h"\ncron = "0 * * * *"\nfeeds = ["https://a.example/x"]',
            'source "bad": field "cron": give either',
        ),
        ('every = "1h"', 'source "bad": field "feeds": a source needs at least one feed'),
        (
            'every = "1h"\nfeeds = ["https://a.example/x"]\narticle_deny = ["("]',
            'field "article_deny": invalid regular',
        ),
        (
            'every = "1h"\nfeeds = ["https://a.example/x"]\nenabled = "yes"',
            'field "enabled": expected true or false',
        ),
        (
            'every = "1h"\nfeeds = ["https://a.example/x"]\nfollow_depth = -1',
            'field "follow_depth": expected a whole',
        ),
        (
            'every = "1h"\nfeeds = ["https://a.example/x"]\nallowed_domains = ["https://a.example"]',
            "allowed_domains",
        ),
        ('feeds = ["https://a.example/x"]', 'source "bad": field "every": no schedule'),
    ],
)
def test_each_mistake_names_file_source_and_field(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, f'[[source]]\nname = "bad"\n{body}\n')
    with pytest.raises(SourceConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert message.startswith("sources.toml: ")
    assert expected in message
    assert "\n" not in message


def test_bad_name_is_reported_by_position(tmp_path: Path) -> None:
    path = write(tmp_path, '[[source]]\nname = "Has Spaces"\nevery = "1h"\nfeeds = ["https://a.example/x"]\n')
    with pytest.raises(SourceConfigError, match=r'sources.toml: source #1: field "name": expected a lowercase slug'):
        load_sources(path)


def test_duplicate_names_and_unknown_defaults_are_errors(tmp_path: Path) -> None:
    one = '[[source]]\nname = "a"\nevery = "1h"\nfeeds = ["https://a.example/x"]\n'
    with pytest.raises(SourceConfigError, match='source "a": field "name": duplicate'):
        load_sources(write(tmp_path, one + one))
    with pytest.raises(SourceConfigError, match=r'\[defaults\]: field "evry": unknown field'):
        load_sources(write(tmp_path, '[defaults]\nevry = "1h"\n' + one))


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceConfigError, match=r"sources.toml: invalid TOML: .*line 2"):
        load_sources(write(tmp_path, '[[source]]\nname = "a\n'))
    with pytest.raises(SourceConfigError, match="file not found"):
        load_sources(tmp_path / "nope.toml")


def test_find_source_lists_known_names(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(SourceConfigError, match=r'no source named "gamma" \(known: alpha_news, beta\)'):
        find_source(load_sources(path), "gamma", path)


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("0s", allow_zero=True) == timedelta(0)
    for bad in ("0s", "soon", "", "30"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_adhoc_source_from_url() -> None:
    source = adhoc_source("https://www.example.org/news/", allow_private=True)
    assert source.name == "adhoc_example_org"
    assert source.start_pages == ("https://www.example.org/news/",)
    assert source.allowed_domains == ("example.org",)
    assert source.robots_sitemaps
    assert source.allow_private
    with pytest.raises(SourceConfigError, match="--url: expected an http"):
        adhoc_source("file:///etc/passwd")
