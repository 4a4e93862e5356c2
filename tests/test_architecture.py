"""The house keeps its shape: the layer contracts hold (import-linter), no module grows past 600
lines nor a class past 300, and the root holds only the two entry points and Scrapy's markers.

docs/architecture.md describes the layers these checks keep true."""

from __future__ import annotations

import ast
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("commands", "daemon", "distributed", "spiders", "pipelines", "crawl", "extraction", "archive", "config")
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300


def production_modules() -> list[Path]:
    modules = [ROOT / "scheduler.py", ROOT / "runner.py"]
    for package in (*PACKAGES, "plugins"):  # plugins/: the Datasette plugin, outside the import layers
        if (ROOT / package).is_dir():
            modules.extend(sorted((ROOT / package).rglob("*.py")))
    return modules


def test_the_layer_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " 0 broken" in result.stdout


def test_the_root_holds_only_the_entry_points() -> None:
    root_modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert root_modules == ["runner.py", "scheduler.py"]


@pytest.mark.parametrize("module", production_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_classes_stay_small(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{module.name}: split it by job"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"class {node.name} is {length} lines"


def test_the_project_sqlite_utils_and_datasette_open_files_with_one_sqlite_library() -> None:
    """Two SQLite libraries in one process drop each other's locks (archive/sqlite.py says why)."""
    from datasette.utils import sqlite as datasette_sqlite
    from sqlite_utils import utils as sqlite_utils_utils

    from archive.sqlite import sqlite3

    assert sqlite3 is sqlite_utils_utils.sqlite3
    assert sqlite3 is datasette_sqlite.sqlite3
    if platform.system() == "Linux" and platform.machine() == "x86_64":  # where the locked wheel exists
        assert sqlite3.__name__ == "pysqlite3"
        assert sqlite3.sqlite_version_info >= (3, 51, 1)
