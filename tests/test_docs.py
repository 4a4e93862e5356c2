"""The README and docs/*.md checked against the code, as sqlite-utils checks its docs against --help.

Every `scheduler.py COMMAND` and every `--option` written in code (fenced blocks and `inline code`)
must exist in the parser `scheduler.build_parser()` builds, read live, so a command added or
renamed later is checked too; every `make TARGET` must be a target of the Makefile; every sources
field documented must be one `config/sources.py` accepts, and every field it accepts must be documented
in docs/sources.md and in the header of sources.toml. Links between the documents must resolve.
The front door's other promises are checked here as well: `make demo PORT=N`, the message that
names it, and the header of the sources file the demo writes.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

import scheduler
from config.sources import KNOWN_FIELDS, load_sources
from demo import run as demo_run
from demo import server as demo_server

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE_RE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_RE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
# Shell operators that end one command and start another (a pipe, a list, a redirection).
SEGMENT_RE = re.compile(r"\s(?:\|\||&&|\||;|>>|>|2>&1)\s|;\s")
OPTION_RE = re.compile(r"^(?:--[A-Za-z][\w-]*|-[A-Za-z])$")  # not `-wal`, a file suffix
# `scheduler.py` then one space and a word: a command. Several spaces are a diagram's columns.
COMMAND_RE = re.compile(r"(?:^|[\s/])scheduler\.py ([a-z][a-z-]*)\b")
MAKE_TARGET_RE = re.compile(r"^([A-Za-z0-9_.-][A-Za-z0-9_. -]*?)\s*:(?!=)", re.MULTILINE)
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Snippet:
    """One piece of code in a document: a line of a fenced block, or an inline code span."""

    doc: str
    text: str
    fence: str | None  # the fenced block's language ("" for none); None for inline code


def snippets(name: str, markdown: str) -> list[Snippet]:
    found: list[Snippet] = []
    for fence in FENCE_RE.finditer(markdown):
        body = fence.group(2).replace("\\\n", " ")  # a command continued on the next line
        found += [Snippet(name, line, fence.group(1)) for line in body.splitlines() if line.strip()]
    prose = FENCE_RE.sub("", markdown)
    found += [Snippet(name, span.group(2).replace("\n", " "), None) for span in INLINE_RE.finditer(prose)]
    return found


def doc_snippets() -> list[Snippet]:
    return [s for doc in DOCS for s in snippets(doc.relative_to(ROOT).as_posix(), doc.read_text(encoding="utf-8"))]


def without_comment(line: str) -> str:
    """A shell line without its `# comment` (a `#` inside a word, as in a URL, stays)."""
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def words(segment: str) -> list[str]:
    """Whitespace-separated words, without the brackets and prompt that mark optional parts."""
    tokens = [t.strip("[](){},") for t in segment.split()]
    if tokens and tokens[0] == "$":
        tokens = tokens[1:]
    return [t for t in tokens if t]


def option_names(tokens: list[str]) -> list[str]:
    return [t.split("=", 1)[0] for t in tokens if OPTION_RE.match(t.split("=", 1)[0])]


# --- what the code has -----------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


@dataclass(frozen=True)
class Cli:
    """The options each scheduler.py command takes, and those of the demo's own scripts."""

    top: set[str]
    commands: dict[str, set[str]]
    modules: dict[str, set[str]]  # `python -m NAME` -> its options

    @classmethod
    def read(cls) -> Cli:
        parser = scheduler.build_parser()
        top = options_of(parser)
        commands = {name: options_of(sub) | top for name, sub in subcommands(parser).items()}
        modules = {
            "demo.run": options_of(demo_run.build_parser()),
            "demo.server": options_of(demo_server.build_parser()),
        }
        return cls(top, commands, modules)

    @property
    def every_option(self) -> set[str]:
        return set().union(self.top, *self.commands.values())


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets: set[str] = set()
    for match in MAKE_TARGET_RE.finditer(text):
        targets |= {name for name in match.group(1).split() if not name.startswith(".") and "/" not in name}
    return targets


# --- the checks --------------------------------------------------------------------------------


def check_segment(segment: str, cli: Cli, targets: set[str]) -> list[str]:
    """What is wrong with one command in the docs (empty when it matches the code)."""
    tokens = words(segment)
    if not tokens or re.search(r"scheduler\.py {2,}\w", segment):  # a diagram's columns, not a command
        return []
    program = next((i for i, t in enumerate(tokens) if t.endswith("scheduler.py")), None)
    if program is not None:
        rest = tokens[program + 1 :]
        command = rest[0] if rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]) else None
        if command is not None and command not in cli.commands:
            return [f"scheduler.py {command}: no such command (scheduler.py has {', '.join(sorted(cli.commands))})"]
        known = cli.commands[command] if command else cli.top
        where = f"scheduler.py {command}" if command else "scheduler.py"
        return [f"{where}: no option {option}" for option in option_names(rest) if option not in known]
    if "-m" in tokens and (module := tokens[tokens.index("-m") + 1 :][:1]) and module[0] in cli.modules:
        rest = tokens[tokens.index("-m") + 2 :]
        return [f"python -m {module[0]}: no option {o}" for o in option_names(rest) if o not in cli.modules[module[0]]]
    if tokens[0] == "make":
        target = next((t for t in tokens[1:] if "=" not in t and not t.startswith("-")), None)
        return [f"make {target}: no such target in the Makefile"] if target and target not in targets else []
    if tokens[0] in cli.commands:  # `crawl --all` in prose: a command without the script's name
        return [
            f"scheduler.py {tokens[0]}: no option {o}" for o in option_names(tokens) if o not in cli.commands[tokens[0]]
        ]
    if OPTION_RE.match(tokens[0].split("=", 1)[0]):  # an option on its own, like `--max-parallel N`
        return [
            f"no scheduler.py command has option {o}" for o in option_names(tokens[:1]) if o not in cli.every_option
        ]
    return []  # another program (datasette, redis-server, systemctl, ...): not ours to check


def problems_in(found: list[Snippet], cli: Cli, targets: set[str]) -> list[str]:
    problems: list[str] = []
    for snippet in found:  # configuration blocks too: a systemd unit's ExecStart= is a command
        line = without_comment(snippet.text) if snippet.fence is not None else snippet.text
        for segment in SEGMENT_RE.split(line):
            problems += [
                f"{snippet.doc}: {p}  [in: {snippet.text.strip()}]" for p in check_segment(segment, cli, targets)
            ]
    return problems


def test_every_command_option_and_make_target_in_the_docs_exists() -> None:
    problems = problems_in(doc_snippets(), Cli.read(), make_targets())
    assert not problems, "the docs name what the code does not have:\n" + "\n".join(problems)


def test_every_scheduler_command_is_documented() -> None:
    documented = {m.group(1) for s in doc_snippets() for m in COMMAND_RE.finditer(" " + s.text)}
    undocumented = sorted(set(Cli.read().commands) - documented)
    assert not undocumented, f"scheduler.py commands no document shows: {undocumented} (add them to docs/*.md)"


def test_the_checker_catches_what_the_code_does_not_have() -> None:
    """The check above can fail: a made-up command, option, module option or target is reported."""
    markdown = """
```console
$ .venv/bin/python scheduler.py nosuch --all
$ .venv/bin/python scheduler.py crawl --all --no-such-option   # a comment may say --anything
$ .venv/bin/python -m demo.run --no-such-port 1
$ make no-such-target PORT=1
```
Or `--no-such-flag N`, `status --no-such-status-option`, and `scheduler.py run --max-parallel 2`.
"""
    problems = problems_in(snippets("x.md", markdown), Cli.read(), make_targets())
    assert [p.split("  [in:")[0] for p in problems] == [
        "x.md: scheduler.py nosuch: no such command (scheduler.py has " + ", ".join(sorted(Cli.read().commands)) + ")",
        "x.md: scheduler.py crawl: no option --no-such-option",
        "x.md: python -m demo.run: no option --no-such-port",
        "x.md: make no-such-target: no such target in the Makefile",
        "x.md: no scheduler.py command has option --no-such-flag",
        "x.md: scheduler.py status: no option --no-such-status-option",
    ]


# --- the sources file's fields ------------------------------------------------------------------


def fields_in_docs_table() -> set[str]:
    text = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    section = text.split("\n## Fields\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def fields_in_sources_toml_header() -> set[str]:
    header: list[str] = []
    for line in (ROOT / "sources.toml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    found: set[str] = set()
    for line in header:  # "#   name   what it is", "#   every | cron   ...", "#   a / b   ..."
        if match := re.match(r"^#   ([a-z_]+(?:\s*[/|]\s*[a-z_]+)*)\s{2,}\S", line):
            found |= set(re.split(r"\s*[/|]\s*", match.group(1)))
    return found


def test_docs_sources_md_documents_exactly_the_fields_sources_py_accepts() -> None:
    documented = fields_in_docs_table()
    assert documented - KNOWN_FIELDS == set(), "docs/sources.md documents fields config/sources.py does not accept"
    assert KNOWN_FIELDS - documented == set(), "fields config/sources.py accepts that docs/sources.md does not document"


def test_sources_toml_header_documents_exactly_the_fields_sources_py_accepts() -> None:
    documented = fields_in_sources_toml_header()
    assert documented - KNOWN_FIELDS == set(), (
        "the sources.toml header documents fields config/sources.py does not accept"
    )
    assert KNOWN_FIELDS - documented == set(), (
        "fields config/sources.py accepts that the sources.toml header leaves out"
    )


def test_every_sources_example_in_the_docs_loads(tmp_path: Path) -> None:
    blocks: dict[tuple[str, int], str] = {}
    for doc in DOCS:
        for index, fence in enumerate(FENCE_RE.finditer(doc.read_text(encoding="utf-8"))):
            if fence.group(1) == "toml":
                blocks[(doc.name, index)] = fence.group(2)
    assert blocks, "the docs show no sources.toml example"
    for (name, index), text in blocks.items():
        path = tmp_path / f"{name}-{index}.toml"
        path.write_text(text, encoding="utf-8")
        assert load_sources(path), f"{name}: example #{index} defines no source"
        assert set(tomllib.loads(text)) <= {"defaults", "source"}


# --- links ----------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE_RE.sub("", path.read_text(encoding="utf-8"))
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_every_link_between_the_documents_resolves() -> None:
    broken: list[str] = []
    for doc in DOCS:
        for target in LINK_RE.findall(FENCE_RE.sub("", doc.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                broken.append(f"{doc.name}: {target}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{doc.name}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_the_readme_stays_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200, "the reference belongs in docs/*.md"
    for command in ("make demo", "make test", "make serve", "make lock", "scheduler.py run", "scheduler.py status"):
        assert command in readme


# --- make demo ------------------------------------------------------------------------------------


def test_make_demo_passes_port_to_the_demo() -> None:
    with_port = subprocess.run(["make", "-n", "demo", "PORT=8123"], cwd=ROOT, capture_output=True, text=True)
    without = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True)
    assert with_port.returncode == 0, with_port.stderr
    assert "-m demo.run --port 8123" in with_port.stdout
    assert "--port" not in without.stdout.split("-m demo.run", 1)[1]


def test_a_busy_demo_port_is_one_line_that_names_make_demo_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        files = ["--db", str(tmp_path / "news.db"), "--sources-out", str(tmp_path / "demo-sources.toml")]
        result = subprocess.run(
            [sys.executable, "-m", "demo.run", "--port", str(port), *files],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "make demo PORT=N" in result.stderr  # and that is what the Makefile takes (test above)
    assert not (tmp_path / "news.db").exists()
    assert not (tmp_path / "demo-sources.toml").exists()


def test_the_demo_sources_file_says_what_wrote_it_and_how_to_use_it(tmp_path: Path) -> None:
    base = "http://127.0.0.1:8123"
    path = demo_run.write_sources(base, tmp_path / "demo-sources.toml")
    text = path.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("# ")][:4]
    assert header[0] == f"# Written by `make demo` (demo/run.py) from demo/sources.toml, for the demo site at {base}."
    assert "{{BASE}}" not in text
    assert "is replaced with" not in text  # the template's own header, about the template
    # The two commands the header gives are ones the demo server and scheduler.py accept.
    server_port = re.search(r"demo\.server --port (\d+)", header[1])
    assert server_port is not None
    assert server_port.group(1) == "8123"
    assert demo_server.build_parser().parse_args(["--port", server_port.group(1)]).port == 8123
    crawl = re.search(r"scheduler\.py (crawl .*)$", header[2])
    assert crawl is not None
    assert scheduler.build_parser().parse_args(crawl.group(1).split()).sources == path
    sources = load_sources(path)
    assert {s.name for s in sources} == {"courier_feeds", "courier_sitemaps", "courier_front"}
    assert all(url.startswith(base + "/") for s in sources for url in s.seed_urls)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_document_is_empty(doc: Path) -> None:
    assert doc.read_text(encoding="utf-8").startswith("# ")
