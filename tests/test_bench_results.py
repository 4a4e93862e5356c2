"""bench/results.py: a benchmark rewrites its own section of bench/RESULTS.md and nothing else."""

from __future__ import annotations

from pathlib import Path

from bench.results import NOTES_MARKER, write_section


def test_a_section_is_replaced_its_hand_written_notes_and_the_other_sections_kept(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n## One (bench/one.py)\n\nold table\n\n"
        f"{NOTES_MARKER}\n\n### Against the targets\n\nwritten by hand\n\n"
        "## Two (bench/two.py)\n\ntwo's table\n",
        encoding="utf-8",
    )
    write_section(results, "## One (bench/one.py)", "## One (bench/one.py)\n\nnew table\n")
    assert results.read_text(encoding="utf-8") == (
        "# Benchmark results\n\n## One (bench/one.py)\n\nnew table\n\n"
        f"{NOTES_MARKER}\n\n### Against the targets\n\nwritten by hand\n\n"
        "## Two (bench/two.py)\n\ntwo's table\n"
    )


def test_a_section_without_notes_is_replaced_whole_and_a_new_one_appended(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## One\n\nold\n\n### old subsection\n\nold too\n", encoding="utf-8")
    write_section(results, "## One", "## One\n\nnew\n")
    write_section(results, "## Two", "## Two\n\nfirst\n")
    assert results.read_text(encoding="utf-8") == "# Benchmark results\n\n## One\n\nnew\n\n## Two\n\nfirst\n"
