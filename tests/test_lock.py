"""requirements.lock pins what pyproject.toml asks for, with hashes; tools.lockcheck says when not."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tools.lockcheck import disagreements, locked_pins

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _lock() -> str:
    return (ROOT / "requirements.lock").read_text(encoding="utf-8")


def test_the_committed_lock_agrees_with_pyproject() -> None:
    assert disagreements(_pyproject(), _lock()) == []


def test_every_locked_package_has_a_hash_and_a_version() -> None:
    lock = _lock()
    pins = locked_pins(lock)
    assert len(pins) > 50  # transitive dependencies too, not only the direct ones
    requirements = [line for line in lock.split("\n") if line and not line.startswith(" ")]
    assert len(requirements) == sum(len(versions) for versions in pins.values())  # each line a pin
    assert all(line.split(";")[0].count("==") == 1 for line in requirements)
    # The one package for some platforms only keeps its marker: pip skips it elsewhere.
    assert "pysqlite3-binary==0.5.4.post2 ; platform_machine == 'x86_64' and sys_platform == 'linux'" in lock
    for block in lock.split("\n\n"):
        if "==" in block:
            assert "--hash=sha256:" in block


def test_a_pin_changed_in_pyproject_alone_is_reported() -> None:
    pyproject = _pyproject()
    pyproject["project"]["dependencies"] = [
        "scrapy==2.0.0" if dep.startswith("scrapy==") else dep for dep in pyproject["project"]["dependencies"]
    ]
    pyproject["project"]["dependencies"].append("not-a-locked-package==1.0")
    pyproject["project"]["dependencies"].append("feedparser>=6")
    problems = disagreements(pyproject, _lock())
    assert any(p.startswith("scrapy: pyproject.toml pins 2.0.0") for p in problems)
    assert any("not-a-locked-package==1.0" in p for p in problems)
    assert any("'feedparser>=6'" in p for p in problems)


def test_the_command_fails_with_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    for name in ("__init__.py", "lockcheck.py"):
        (tmp_path / "tools" / name).write_text((ROOT / "tools" / name).read_text())
    (tmp_path / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text().replace('"warcio==1.8.1"', '"warcio==0.1"')
    )
    (tmp_path / "requirements.lock").write_text(_lock())
    result = subprocess.run(
        [sys.executable, "-m", "tools.lockcheck"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: warcio: pyproject.toml pins 0.1, requirements.lock pins 1.8.1 (run make lock)"
    ]
    good = subprocess.run([sys.executable, "-m", "tools.lockcheck"], cwd=ROOT, capture_output=True, check=False)
    assert good.returncode == 0
