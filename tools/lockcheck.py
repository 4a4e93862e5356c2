"""Check that requirements.lock pins what pyproject.toml asks for: `python -m tools.lockcheck`.

Runs before the virtual environment exists (the Makefile calls it ahead of every install), so it uses the
standard library only. It reads each direct dependency's `name==version` from pyproject.toml and fails
with one line per disagreement when the lock is missing the package, pins another version, or a direct
dependency is not pinned exactly. Resolving the whole tree again needs the package index: that is
`make lock-check`.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    """The PEP 503 form of a distribution name, so `backports.zstd` and `backports-zstd` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_pins(pyproject: dict) -> tuple[dict[str, str], list[str]]:
    """Name -> version of every direct dependency (main and dev), and the ones not pinned with ==."""
    project = pyproject.get("project", {})
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins: dict[str, str] = {}
    unpinned: list[str] = []
    for requirement in requirements:
        match = _PIN.match(requirement.replace(" ", ""))
        if match is None:
            unpinned.append(requirement)
        else:
            pins[normalise(match.group(1))] = match.group(3)
    return pins, unpinned


def locked_pins(lock_text: str) -> dict[str, list[str]]:
    """Name -> versions of every package requirements.lock pins: one, or one per marker where the
    lock (compiled for every platform) pins a package differently for different platforms."""
    pins: dict[str, list[str]] = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line)
        if match is not None:
            pins.setdefault(normalise(match.group(1)), []).append(match.group(3))
    return pins


def disagreements(pyproject: dict, lock_text: str) -> list[str]:
    """One message per direct dependency the lock does not pin as pyproject.toml does."""
    wanted, unpinned = direct_pins(pyproject)
    locked = locked_pins(lock_text)
    problems = [f"{requirement!r} in pyproject.toml is not pinned with ==" for requirement in unpinned]
    for name, version in sorted(wanted.items()):
        if name not in locked:
            problems.append(f"{name}=={version} is in pyproject.toml but not in requirements.lock")
        elif locked[name] != [version]:
            problems.append(f"{name}: pyproject.toml pins {version}, requirements.lock pins {', '.join(locked[name])}")
    if "--hash=" not in lock_text:
        problems.append("requirements.lock has no hashes")
    return problems


def main() -> int:
    lock = ROOT / "requirements.lock"
    if not lock.exists():
        print("error: requirements.lock is missing: run make lock", file=sys.stderr)
        return 1
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    problems = disagreements(pyproject, lock.read_text(encoding="utf-8"))
    for problem in problems:
        print(f"error: {problem} (run make lock)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
