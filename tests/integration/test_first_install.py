"""What `make run` installs on a fresh checkout: only what running needs, from the
run lock, saying what it is doing. A real install into a new virtualenv (pip's
cache makes it quick after the first time on a machine)."""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

from tests.support.processes import ROOT


def fresh_checkout(into: Path) -> Path:
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_the_first_install_says_what_it_does_and_installs_only_what_running_needs(tmp_path: Path) -> None:
    checkout = fresh_checkout(tmp_path / "shop")

    first = subprocess.run(["scripts/install.sh", "run"], cwd=checkout, capture_output=True, text=True, timeout=600)

    assert first.returncode == 0, first.stderr[-3000:]
    assert "installing shop's run dependencies into .venv (first run" in first.stdout
    python = checkout / ".venv" / "bin" / "python"
    assert missing(python, "flask", "celery", "flower", "gunicorn", "fpdf", "psycopg") == []
    tools = ["pytest", "playwright", "ruff", "matplotlib"]
    assert missing(python, *tools) == tools
    again = subprocess.run(["scripts/install.sh", "run"], cwd=checkout, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout == "", "a second make run installs nothing"


def missing(python: Path, *modules: str) -> list[str]:
    """The modules the virtualenv's interpreter cannot find."""
    probe = f"import importlib.util as u; print(' '.join(m for m in {modules!r} if not u.find_spec(m)))"
    return subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
