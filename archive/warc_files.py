"""The WARC files beside the archive that hold its raw pages: written with warcio, gzip per record,
a `response` record per page and its `request` record after it.

Files are `<archive dir>/warc/<archive name>-<YYYYMMDD>-<n>.warc.gz`: one series per UTC day,
a new file once one passes `max_bytes`. A process appends only to a file it holds an exclusive
`flock` on, so two crawl processes never write one file, and a file is taken up again by a later
process (the same day) only once its writer is gone. Before appending, that later process cuts the
file back to the end of its last committed record: whatever a killed writer appended after it is
referenced by nothing (its rows were never committed), and a record torn half-way is gone.

A record is written, then `sync()`ed to disk, and only then is its reference committed in the
archive (archive/raw_pages.py): a reference never points at bytes that are not on disk.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from warcio.recordloader import ArcWarcRecord

# A WARC file is closed once it passes this size (the size the WARC guidelines recommend).
MAX_BYTES = 1_000_000_000
# Response headers that describe the bytes on the wire rather than the stored payload: replaced by
# ones that fit the payload as recorded.
WIRE_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


def warc_directory(db_path: str | os.PathLike[str]) -> Path:
    """Where an archive's WARC files go: a `warc` folder beside the database file."""
    return Path(db_path).resolve().parent / "warc"


def file_prefix(db_path: str | os.PathLike[str]) -> str:
    """Each archive's files carry its name, so two archives in one folder never share a file."""
    return Path(db_path).stem


@dataclass(frozen=True)
class RecordRef:
    """Where one record lies: the file's name in the WARC folder, its byte offset and length."""

    warc_file: str
    offset: int
    length: int


@dataclass(frozen=True)
class HttpResponse:
    """One fetched page as its WARC `response` record holds it."""

    url: str
    fetched_at: str  # ISO 8601, UTC
    status: int
    headers: list[tuple[str, str]]  # as received; the wire-only ones are replaced (WIRE_HEADERS)
    payload: bytes  # the body as recorded: the wire's gzip bytes when `gzipped`
    gzipped: bool = False
    # The request's headers as Scrapy sent them (no secrets: recordable_request_headers), for a
    # `request` record after the response; None: not known (pages moved from raw_pages).
    request_headers: list[tuple[str, str]] | None = None


# Request headers that carry a secret (a source's password, a session) stay out of the files.
SECRET_REQUEST_HEADERS = {"authorization", "proxy-authorization", "cookie"}


def recordable_request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in SECRET_REQUEST_HEADERS]


def request_record(response: HttpResponse, response_record: ArcWarcRecord) -> ArcWarcRecord:
    """The `request` record of a response: the request line and headers, concurrent to it."""
    parts = urlsplit(response.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = recordable_request_headers(response.request_headers or [])
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    return RECORDS.create_warc_record(
        response.url,
        "request",
        payload=io.BytesIO(b""),
        length=0,
        http_headers=StatusAndHeaders(f"GET {target} HTTP/1.1", headers, is_http_request=True),
        warc_headers_dict={
            "WARC-Date": warc_date(response.fetched_at),
            "WARC-Concurrent-To": response_record.rec_headers.get_header("WARC-Record-ID"),
        },
    )


def utf8_response(response: HttpResponse, html: str) -> HttpResponse:
    """A page recorded as its decoded HTML in UTF-8, its Content-Type saying so: for a page that did
    not come gzip-compressed, whose bytes in another charset are not kept."""
    content_type = next((v for n, v in response.headers if n.lower() == "content-type"), "text/html")
    media_type = content_type.split(";")[0].strip() or "text/html"
    headers = [(n, v) for n, v in response.headers if n.lower() != "content-type"]
    headers.append(("Content-Type", f"{media_type}; charset=utf-8"))
    return replace(response, headers=headers, payload=html.encode("utf-8"), gzipped=False)


def page_records(response: HttpResponse) -> bytes:
    """A page's response record, and its request record when the request is known, each its own
    gzip member: what the WARC file gets (the extraction workers build them for pages that did not
    come gzip-compressed, so the crawl process only appends them)."""
    record = RECORDS.create_warc_record(
        response.url,
        "response",
        payload=io.BytesIO(response.payload),
        length=len(response.payload),  # known: warcio need not buffer it in a temporary file
        http_headers=http_headers(response),
        warc_headers_dict={"WARC-Date": warc_date(response.fetched_at)},
    )
    members = gzip_member(record, level=STORED if response.gzipped else FAST)
    if response.request_headers is not None:
        members += gzip_member(request_record(response, record), level=FAST)
    return members


def warc_date(iso: str) -> str:
    """WARC-Date wants UTC with a Z."""
    when = datetime.fromisoformat(iso)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def http_headers(response: HttpResponse) -> StatusAndHeaders:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    headers = [(name, value) for name, value in response.headers if name.lower() not in WIRE_HEADERS]
    if response.gzipped:
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(response.payload))))
    return StatusAndHeaders(f"{response.status} {reason}".strip(), headers, protocol="HTTP/1.1")


# Each record is one gzip member, as the WARC standard's annex says and every tool expects. A body
# that came gzip-compressed does not shrink again: its member is stored (level 0: 0.04 ms for a
# 64 KB page, against 1.2 ms at level 1 or warcio's 9). Other bodies take level 1 (2.1 ms for a
# 343 KB page, 4.5x smaller; level 6: 6.6 ms, 5.3x).
STORED = 0
FAST = 1
RECORDS = WARCWriter(io.BytesIO())  # builds records (headers, digests); gzip_member writes them


def gzip_member(record: ArcWarcRecord, *, level: int) -> bytes:
    """One record as a gzip member of its own."""
    buffer = io.BytesIO()
    WARCWriter(buffer, gzip=False).write_record(record)
    compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    return compressor.compress(buffer.getvalue()) + compressor.flush()


class WarcWriter:
    """Appends response records to this process's own WARC file of the day.

    `committed_end(name)` gives the end of the last record the archive references in a file (0 if
    none): the length a file taken up again is cut back to.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        committed_end: Callable[[str], int],
        *,
        max_bytes: int = MAX_BYTES,
        today: Callable[[], str] = lambda: datetime.now(UTC).strftime("%Y%m%d"),
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.committed_end = committed_end
        self.max_bytes = max_bytes
        self.today = today
        self.file: BinaryIO | None = None
        self.name = ""
        self.day = ""
        self.unsynced: list[BinaryIO] = []  # files written since the last sync
        # Files rolled over: kept open (and locked) until the next write, when the references to
        # their last records are committed, so nothing cuts them back in between.
        self.finished: list[BinaryIO] = []

    def write(self, pages: Iterable[HttpResponse | bytes]) -> list[RecordRef]:
        """Append each page's records (`page_records`, or those bytes already built); not yet on
        disk for sure: `sync()` that. A reference spans a page's records: read at its offset, the
        response comes first."""
        self._close_finished()
        refs = []
        for page in pages:
            members = page if isinstance(page, bytes) else page_records(page)
            file = self._file_for_next_record()
            offset = file.tell()
            try:
                file.write(members)
            except OSError:  # a full disk: the next record must not follow a torn one
                file.truncate(offset)
                file.seek(offset)
                raise
            refs.append(RecordRef(self.name, offset, file.tell() - offset))
        return refs

    def sync(self) -> None:
        """Flush and fsync every file written since the last sync."""
        for file in self.unsynced:
            file.flush()
            os.fsync(file.fileno())
        self.unsynced = []

    def close(self) -> None:
        self.sync()
        self._close_finished()
        if self.file is not None:
            self.file.close()
            self.file = None

    def _close_finished(self) -> None:
        for file in self.finished:
            file.close()  # and its lock with it
        self.finished = []

    # --- choosing the file ----------------------------------------------------------------

    def _file_for_next_record(self) -> BinaryIO:
        day = self.today()
        if self.file is None or day != self.day or self.file.tell() >= self.max_bytes:
            if self.file is not None:
                self.finished.append(self.file)
            self.file, self.name = self._open_free_file(day)
            self.day = day
        if self.file not in self.unsynced:
            self.unsynced.append(self.file)
        return self.file

    def _open_free_file(self, day: str) -> tuple[BinaryIO, str]:
        """The first file of the day that is under the size cap and that no live process holds."""
        self.directory.mkdir(parents=True, exist_ok=True)
        pattern = re.compile(rf"^{re.escape(self.prefix)}-{day}-(\d+)\.warc\.gz$")
        while True:  # again if another process takes the new number first
            taken = sorted(int(m[1]) for p in self.directory.iterdir() if (m := pattern.match(p.name)))
            for number in [*taken, (taken[-1] + 1) if taken else 0]:
                name = f"{self.prefix}-{day}-{number}.warc.gz"
                path = self.directory / name
                if number in taken and path.stat().st_size >= self.max_bytes:
                    continue
                file = open(path, "a+b")  # noqa: SIM115 (kept open across batches; closed by close())
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    file.close()
                    continue  # another live process writes it
                self._take_up(file, name)
                if number not in taken:
                    sync_directory(self.directory)
                return file, name

    def _take_up(self, file: BinaryIO, name: str) -> None:
        """Cut a file back to its last committed record and write a warcinfo record if it is empty."""
        end = self.committed_end(name)
        file.seek(0, os.SEEK_END)
        if file.tell() > end:
            file.truncate(end)
            file.flush()
            os.fsync(file.fileno())
        file.seek(0, os.SEEK_END)
        if end == 0:
            info = RECORDS.create_warcinfo_record(name, {"software": "news-archive", "format": "WARC/1.0"})
            file.write(gzip_member(info, level=FAST))


def sync_directory(directory: Path) -> None:
    """A new file's name is on disk only once its folder is synced."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class StoredResponse:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # the payload with its Content-Encoding undone


def read_record(directory: Path, ref: RecordRef) -> StoredResponse:
    """The response record at `ref`. Raises ValueError if it is missing, torn or not a response."""
    try:
        with open(directory / ref.warc_file, "rb") as file:
            file.seek(ref.offset)
            data = file.read(ref.length)
        if len(data) != ref.length:
            raise ValueError(f"{ref.warc_file} ends before byte {ref.offset + ref.length}")
        for record in ArchiveIterator(io.BytesIO(data)):
            if record.rec_type != "response" or record.http_headers is None:
                break
            return StoredResponse(
                record.rec_headers.get_header("WARC-Target-URI"),
                int(record.http_headers.get_statuscode()),
                list(record.http_headers.headers),
                record.content_stream().read(),
            )
    except (OSError, EOFError) as exc:  # a missing file, a damaged gzip member
        raise ValueError(f"cannot read {ref.warc_file} at {ref.offset}: {exc}") from exc
    raise ValueError(f"no response record in {ref.warc_file} at {ref.offset}")
