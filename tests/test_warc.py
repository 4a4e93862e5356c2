"""Raw pages in WARC files beside the archive (#25): a real crawl writes response records readable by
warcio, reextract reads them, prune deletes old files, move-raw empties an older archive's
raw_pages, and neither a torn record nor a killed process loses or duplicates a page."""

from __future__ import annotations

import gzip
import re
import signal
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.raw_html import raw_page_row
from archive.raw_pages import RawPageFiles, page_html, save_refs
from archive.raw_upkeep import move_raw_pages, prune_raw_pages
from archive.schema import open_db
from archive.sqlite import sqlite3
from archive.transactions import immediate_transaction
from archive.warc_files import warc_directory
from demo.server import DEFAULT_ROOT, SiteServer
from pipelines.reextract import reextract
from scheduler import main
from tests.conftest import DEMO_SOURCES, ROOT, scrapy_crawl, write_sources

FILE_NAME = re.compile(r"^news-\d{8}-\d+\.warc\.gz$")


def demo_pages(server: SiteServer) -> dict[str, bytes]:
    """The demo's article HTML files as the server renders them, by URL."""
    pages = {}
    for file in DEFAULT_ROOT.rglob("*.html"):
        path = "/" + file.relative_to(DEFAULT_ROOT).as_posix()
        pages[server.base_url + path] = file.read_bytes().replace(b"{{BASE}}", server.base_url.encode())
    return pages


def crawl_demo(tmp_path: Path, *, gzip_html: bool = True, keep_raw: bool = True) -> tuple[Path, dict[str, bytes]]:
    tmp_path.mkdir(exist_ok=True)
    server = SiteServer(DEFAULT_ROOT).start()
    server.gzip_html = gzip_html
    try:
        sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), server.base_url, tmp_path / "sources.toml")
        db_path = tmp_path / "news.db"
        scrapy_crawl("courier_feeds", db=db_path, sources=sources, settings={"NEWS_KEEP_RAW_HTML": str(keep_raw)})
        return db_path, demo_pages(server)
    finally:
        server.stop()


def refs(db_path: Path) -> list[dict]:
    db = open_db(db_path)
    try:
        return [dict(row) for row in db["raw_page_refs"].rows_where(order_by="url")]
    finally:
        db.close()


def records_of(path: Path) -> dict[int, int]:
    """Each record's offset and length, as warcio finds them reading the whole file."""
    with open(path, "rb") as file:
        records = ArchiveIterator(file)
        return {records.get_record_offset(): records.get_record_length() for _ in records}


def responses_in(directory: Path) -> list[str]:
    """The target URI of every response record of every file, reading each file whole."""
    uris = []
    for path in sorted(directory.glob("*.warc.gz")):
        with open(path, "rb") as file:
            records = list(ArchiveIterator(file))
        assert records[0].rec_type == "warcinfo"
        uris += [r.rec_headers.get_header("WARC-Target-URI") for r in records if r.rec_type == "response"]
    return uris


@pytest.mark.parametrize("gzip_html", [True, False], ids=["served gzipped", "served plain"])
def test_a_crawl_keeps_each_page_as_a_warc_response_record(gzip_html: bool, tmp_path: Path) -> None:
    db_path, pages = crawl_demo(tmp_path, gzip_html=gzip_html)
    db = open_db(db_path)
    assert db["raw_pages"].count == 0  # no HTML in the archive file
    articles = db["articles"].count
    db.close()
    stored = refs(db_path)
    assert len(stored) == articles >= 5
    directory = warc_directory(db_path)
    assert directory == tmp_path / "warc"
    for ref in stored:
        assert FILE_NAME.match(ref["warc_file"])
        with open(directory / ref["warc_file"], "rb") as file:
            file.seek(ref["record_offset"])
            records = iter(ArchiveIterator(file))
            record = next(records)
            assert record.rec_type == "response"
            fetched_url = record.rec_headers.get_header("WARC-Target-URI")
            assert record.http_headers.get_statuscode() == "200"
            assert record.http_headers.get_header("Content-Type").startswith("text/html")
            assert record.http_headers.get_header("Server")  # the headers as received
            if gzip_html:
                assert record.http_headers.get_header("Content-Encoding") == "gzip"
            body = record.content_stream().read()
            response_id = record.rec_headers.get_header("WARC-Record-ID")
            request = next(records)  # the request record follows its response
            assert request.rec_type == "request"
            assert request.rec_headers.get_header("WARC-Concurrent-To") == response_id
            assert request.http_headers.protocol == "GET"
            assert fetched_url.endswith(request.http_headers.statusline.split()[0])
            assert request.http_headers.get_header("User-Agent").startswith("news-archive/")
        # The reference spans the response and its request, as warcio finds them in the file.
        found = records_of(directory / ref["warc_file"])
        response_length = found[ref["record_offset"]]
        request_length = found[ref["record_offset"] + response_length]
        assert ref["record_length"] == response_length + request_length
        assert body == pages[fetched_url]  # the page the server sent, from the URL it was fetched at
        assert page_html(directory, ref).encode("utf-8") == body
    assert len(responses_in(directory)) == len(stored)  # and every file reads whole, start to end
    # warcio's own checker: every record's block and payload digests match what is in the file.
    warcio = Path(sys.executable).parent / "warcio"
    for path in directory.glob("*.warc.gz"):
        checked = subprocess.run([warcio, "check", "-v", path], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout
        in_file = sum(ref["warc_file"] == path.name for ref in stored)
        assert checked.stdout.count("digest pass") == 1 + 2 * in_file  # warcinfo, each response and request


def test_warc_files_that_cannot_be_written_stop_the_crawl_like_a_full_disk(tmp_path: Path) -> None:
    (tmp_path / "warc").write_text("a file where the folder should be")
    server = SiteServer(DEFAULT_ROOT).start()
    try:
        sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), server.base_url, tmp_path / "sources.toml")
        command = [sys.executable, "-m", "scrapy", "crawl", "news", "-a", "source=courier_feeds"]
        for name, value in {"NEWS_DB_PATH": tmp_path / "news.db", "NEWS_SOURCES_FILE": sources}.items():
            command += ["-s", f"{name}={value}"]
        command += ["-s", "NEWS_STORE_BATCH_SIZE=3"]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    finally:
        server.stop()
    assert "Traceback" not in result.stderr
    assert result.stderr.count("cannot write the raw pages' WARC file") >= 1
    assert result.stderr.count("; stopping the crawl") == 1
    db = open_db(tmp_path / "news.db")
    assert db["articles"].count == 0  # no article without its page
    (run,) = db["crawl_runs"].rows
    assert (run["status"], run["finish_reason"]) == ("failed", "storage_error")
    db.close()


def test_the_archive_file_no_longer_grows_with_the_html(tmp_path: Path) -> None:
    with_raw, _ = crawl_demo(tmp_path / "with")
    without_raw, _ = crawl_demo(tmp_path / "without", keep_raw=False)
    html_bytes = sum(ref["size"] for ref in refs(with_raw))
    assert html_bytes > 50_000
    # The references and their index take a few pages of SQLite; the HTML went to warc/.
    assert with_raw.stat().st_size - without_raw.stat().st_size < html_bytes / 4
    assert not warc_directory(without_raw).exists()


def test_reextract_reads_the_pages_from_the_warc_files(tmp_path: Path) -> None:
    db_path, _ = crawl_demo(tmp_path)
    db = open_db(db_path)
    good = {row["url"]: row["title"] for row in db["articles"].rows}
    with db.atomic():
        db.execute("UPDATE articles SET title = 'stale'")
    db.close()
    counts = reextract(db_path)
    assert counts["articles"] == len(good)
    assert counts["failed"] == 0
    assert counts["title"] == len(good)
    db = open_db(db_path)
    assert {row["url"]: row["title"] for row in db["articles"].rows} == good


# --- without a crawl: pages made up, written through the archive's own code -----------------------


def legacy_archive(path: Path, count: int) -> dict[str, str]:
    """An archive as an older version left it: articles with raw_pages rows in each codec."""
    db = open_db(path)
    pages = {}
    with db.atomic():
        for n in range(count):
            url = f"https://news.example/{n:05d}"
            html = f"<html><body><p>Page {n}: caf\u00e9 \u2014 {'text ' * (n % 50)}</p></body></html>"
            db["articles"].insert({"url": url, "source": "s", "first_seen_at": "x", "last_seen_at": "x"})
            row = raw_page_row(
                url, html, fetched_at="2026-01-02T03:04:05+00:00", http_status=200, content_type="text/html"
            )
            if n % 3 == 1:  # as the wire sent it, in Latin-1 where it can be
                wire = html.replace("\u2014", "-").encode("latin-1")
                row.update(html_zstd=None, html_gzip=gzip.compress(wire), charset="latin-1")
                html = html.replace("\u2014", "-")
            elif n % 3 == 2:  # from before zstd
                row.update(html_zstd=None, html_zlib=zlib.compress(html.encode()))
            db["raw_pages"].insert(row)
            pages[url] = html
    db.close()
    return pages


def assert_every_page_once(path: Path, pages: dict[str, str]) -> None:
    db = open_db(path)
    left = {row["url"] for row in db["raw_pages"].rows}
    stored = [dict(row) for row in db["raw_page_refs"].rows]
    db.close()
    assert left.isdisjoint(ref["url"] for ref in stored)
    assert left | {ref["url"] for ref in stored} == set(pages)
    for ref in stored:
        assert page_html(warc_directory(path), ref) == pages[ref["url"]]


def test_move_raw_moves_an_older_archive_out_and_survives_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    pages = legacy_archive(path, 1500)
    command = [sys.executable, "scheduler.py", "move-raw", "--db", str(path), "--batch", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watch = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        while process.poll() is None:
            try:
                moved = watch.execute("SELECT count(*) FROM raw_page_refs").fetchone()[0]
            except sqlite3.OperationalError:  # the table is not made yet
                moved = 0
            if moved >= 20:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        process.wait(timeout=60)
    finally:
        watch.close()
    assert process.returncode == -signal.SIGKILL, "move-raw ended before it could be killed"
    assert_every_page_once(path, pages)  # half done: each page a row or a reference, never both

    assert main(["move-raw", "--db", str(path), "--batch", "200"]) == 0
    assert_every_page_once(path, pages)
    db = open_db(path)
    assert db["raw_pages"].count == 0
    db.close()
    # Whatever the killed run wrote and never committed was cut off: each page is in the files once.
    assert sorted(responses_in(warc_directory(path))) == sorted(pages)


def test_move_raw_keeps_a_newer_page_and_leaves_a_damaged_row(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    pages = legacy_archive(path, 3)
    db = open_db(path)
    newer = raw_page_row(
        "https://news.example/00000",
        "<p>newer</p>",
        fetched_at="2026-02-01T00:00:00",
        http_status=200,
        content_type="text/html",
    )
    files = RawPageFiles(db)
    with immediate_transaction(db):  # page 0 fetched again, its legacy row not deleted
        db["raw_page_refs"].insert_all(files.write([newer]))
    files.close()
    db.execute("UPDATE raw_pages SET html_zlib = x'00' WHERE url = 'https://news.example/00002'")
    counts = move_raw_pages(db)
    assert counts == {"moved": 2, "damaged": 1}  # page 0's older copy is dropped: the newer one stays
    assert page_html(warc_directory(path), db["raw_page_refs"].get("https://news.example/00000")) == "<p>newer</p>"
    assert (
        page_html(warc_directory(path), db["raw_page_refs"].get("https://news.example/00001"))
        == pages["https://news.example/00001"]
    )
    assert [row["url"] for row in db["raw_pages"].rows] == ["https://news.example/00002"]
    db.close()


def test_a_torn_last_record_is_cut_off_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    pages = legacy_archive(path, 4)
    db = open_db(path)
    rows = list(db["raw_pages"].rows)
    files = RawPageFiles(db)
    committed = files.write(rows[:2])
    with immediate_transaction(db):
        save_refs(db, committed)
    (torn,) = files.write(rows[2:3])  # the process dies while this one is half written
    name = torn["warc_file"]
    files.writer.file.truncate(torn["record_offset"] + torn["record_length"] // 2)
    files.writer.file.close()  # its lock goes with the process
    directory = warc_directory(path)
    for ref in committed:
        assert page_html(directory, ref) == pages[ref["url"]]

    later = RawPageFiles(db)  # the next process to write that day takes the file up again
    (next_ref,) = later.write(rows[3:4])
    later.close()
    assert next_ref["warc_file"] == name
    assert next_ref["record_offset"] == committed[-1]["record_offset"] + committed[-1]["record_length"]
    assert responses_in(directory) == [rows[0]["url"], rows[1]["url"], rows[3]["url"]]
    assert page_html(directory, next_ref) == pages[rows[3]["url"]]
    db.close()


def test_two_writers_never_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    legacy_archive(path, 2)
    db = open_db(path)
    rows = list(db["raw_pages"].rows)
    first, second = RawPageFiles(db), RawPageFiles(db)
    (a,), (b,) = first.write(rows[:1]), second.write(rows[1:])
    assert a["warc_file"] != b["warc_file"]
    first.close()
    second.close()
    db.close()


WRITER_PROCESS = """
import sys, time
from pathlib import Path
from archive.raw_html import raw_page_row
from archive.raw_pages import RawPageFiles, save_refs
from archive.schema import open_db
from archive.transactions import immediate_transaction

db = open_db(sys.argv[1])
name, barrier = sys.argv[2], Path(sys.argv[3])
files = RawPageFiles(db)
for batch in range(10):
    rows = []
    for n in range(5):
        url = f"https://news.example/{name}/{batch}/{n}"
        with immediate_transaction(db):
            db["articles"].insert({"url": url, "source": name, "first_seen_at": "x", "last_seen_at": "x"})
        html = f"<p>{url}</p>"
        rows.append(raw_page_row(url, html, fetched_at="2026-01-01", http_status=200, content_type="text/html"))
    refs = files.write(rows)
    with immediate_transaction(db):
        save_refs(db, refs)
    if batch == 0:  # every process holds its file before any goes on
        (barrier / name).touch()
        while len(list(barrier.iterdir())) < 3:
            time.sleep(0.01)
files.close()
"""


def test_crawl_processes_writing_at_once_each_append_to_their_own_file(tmp_path: Path) -> None:
    path, barrier = tmp_path / "news.db", tmp_path / "barrier"
    barrier.mkdir()
    open_db(path).close()
    command = [sys.executable, "-c", WRITER_PROCESS, str(path)]
    writers = [subprocess.Popen([*command, f"p{i}", str(barrier)], cwd=ROOT) for i in range(3)]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    stored = refs(path)
    assert len(stored) == 150
    for ref in stored:
        assert page_html(warc_directory(path), ref) == f"<p>{ref['url']}</p>"
    # Three files, one per process, none with another's records: each reads whole, start to end.
    by_file: dict[str, set[str]] = {}
    for ref in stored:
        by_file.setdefault(ref["warc_file"], set()).add(ref["url"].split("/")[3])
    assert sorted(len(writers_of) for writers_of in by_file.values()) == [1, 1, 1]
    assert sorted(responses_in(warc_directory(path))) == sorted(ref["url"] for ref in stored)


def test_a_file_is_rolled_over_at_the_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    legacy_archive(path, 6)
    db = open_db(path)
    files = RawPageFiles(db, max_bytes=1)  # every record starts a new file
    written = files.write(list(db["raw_pages"].rows))
    files.close()
    assert len({ref["warc_file"] for ref in written}) == 6
    db.close()


def test_prune_deletes_old_files_and_their_references_only(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    pages = legacy_archive(path, 6)
    db = open_db(path)
    rows = list(db["raw_pages"].rows)
    for day, batch in (("20250101", rows[:3]), (datetime.now(UTC).strftime("%Y%m%d"), rows[3:])):
        files = RawPageFiles(db, today=lambda day=day: day)
        written = files.write(batch)
        files.close()
        with immediate_transaction(db):
            save_refs(db, written)
    directory = warc_directory(path)
    old = directory / "news-20250101-0.warc.gz"
    assert old.exists()
    db.close()

    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[defaults]\nevery = "1h"\nkeep_raw = "forever"\n\n[[source]]\nname = "s"\nfeeds = ["https://news.example/feed"]\n'
    )
    assert main(["prune-raw", "--db", str(path), "--sources", str(sources)]) == 0
    assert old.exists()  # "forever" prunes nothing
    sources.write_text(sources.read_text().replace('"forever"', '"180d"'))
    assert main(["prune-raw", "--db", str(path), "--sources", str(sources)]) == 0
    assert not old.exists()

    db = open_db(path)
    kept = {row["url"]: dict(row) for row in db["raw_page_refs"].rows}
    assert set(kept) == {row["url"] for row in rows[3:]}
    for url, ref in kept.items():
        assert page_html(directory, ref) == pages[url]
    assert db["articles"].count == 6  # the articles stay
    db.close()
    # A retention shorter than a day leaves today's file, which is still being written to.
    assert prune_raw_pages(open_db(path), timedelta(hours=1)) == {"files": 0, "pages": 0, "bytes": 0, "cut": 0}


def test_prune_cuts_what_a_killed_writer_left_in_a_file_no_one_takes_up(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    pages = legacy_archive(path, 3)
    db = open_db(path)
    rows = list(db["raw_pages"].rows)
    files = RawPageFiles(db, today=lambda: "20250101")  # a day no writer comes back to
    committed = files.write(rows[:2])
    with immediate_transaction(db):
        save_refs(db, committed)
    (torn,) = files.write(rows[2:])
    files.writer.file.truncate(torn["record_offset"] + 100)  # killed half-way through a record
    files.writer.file.close()
    file = warc_directory(path) / torn["warc_file"]
    # warcio reads on past the torn record (it skips a last member cut short) ...
    assert responses_in(warc_directory(path)) == [rows[0]["url"], rows[1]["url"]]
    # ... and prune cuts it off, so that no other tool meets it
    assert prune_raw_pages(db, None)["cut"] == 100
    assert responses_in(warc_directory(path)) == [rows[0]["url"], rows[1]["url"]]
    assert file.stat().st_size == committed[-1]["record_offset"] + committed[-1]["record_length"]
    for ref in committed:
        assert page_html(warc_directory(path), ref) == pages[ref["url"]]
    db.close()


def test_a_file_rolled_over_stays_locked_until_its_references_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    pages = legacy_archive(path, 2)
    db = open_db(path)
    rows = list(db["raw_pages"].rows)
    days = iter(["20250101", "20250102"])  # asked once a record
    files = RawPageFiles(db, today=lambda: next(days, "20250102"))
    written = files.write(rows)  # midnight passes between the two pages
    assert [ref["warc_file"] for ref in written] == ["news-20250101-0.warc.gz", "news-20250102-0.warc.gz"]
    # A prune before the commit must not take the first file's record for a killed writer's.
    assert prune_raw_pages(db, None)["cut"] == 0
    with immediate_transaction(db):
        save_refs(db, written)
    files.close()
    for ref in written:
        assert page_html(warc_directory(path), ref) == pages[ref["url"]]
    db.close()


def test_a_bad_keep_raw_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[defaults]\nevery = "1h"\nkeep_raw = "half a year"\n\n[[source]]\nname = "s"\nfeeds = ["https://news.example/feed"]\n'
    )
    assert main(["prune-raw", "--db", str(tmp_path / "news.db"), "--sources", str(sources)]) == 2
    assert capsys.readouterr().err.strip() == (
        'error: sources.toml: [defaults]: field "keep_raw": expected "forever" or a duration like "180d", '
        "got 'half a year'"
    )
    assert not (tmp_path / "news.db").exists()


def test_a_request_record_keeps_no_secret_header(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    legacy_archive(path, 1)
    db = open_db(path)
    (row,) = db["raw_pages"].rows
    sent = [("User-Agent", "news-archive/0.1"), ("Authorization", "Basic c2VjcmV0"), ("Cookie", "session=s3cret")]
    files = RawPageFiles(db)
    files.write([{**row, "request_headers": sent}])
    files.close()
    db.close()
    (file,) = warc_directory(path).glob("*.warc.gz")
    with open(file, "rb") as stream:
        (request,) = [r for r in ArchiveIterator(stream) if r.rec_type == "request"]
        assert request.http_headers.headers == [("Host", "news.example"), ("User-Agent", "news-archive/0.1")]
    text = gzip.decompress(file.read_bytes())
    assert b"c2VjcmV0" not in text
    assert b"s3cret" not in text
