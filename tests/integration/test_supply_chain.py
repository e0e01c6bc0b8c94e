"""The lock files are what gets installed, and they hold what they must (issue 11, dependencies).

requirements/run.lock (`make run`, the image) and requirements/dev.lock (`make test`, lint, bench,
CI) pin every package with a hash; `scripts/install.sh` installs them with --require-hashes.
`scripts/audit.py` (CI, before the tests) fails on a known vulnerability in a pin.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.processes import ROOT

LOCKS = ("run", "dev")
# Floors past known CVEs; gunicorn 25.1 is also the first with --no-control-socket.
FLOORS = {"gunicorn": "25.1", "werkzeug": "3.0.6", "tornado": "6.5"}
TOOLS = {"pytest", "playwright", "schemathesis", "ruff", "mypy", "matplotlib", "py-spy", "pip-audit", "pip-tools"}


def pins(lock: str) -> dict[str, tuple[Version, list[str]]]:
    """{name: (version, hashes)} of a pip-compile lock file."""
    text = (ROOT / "requirements" / f"{lock}.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    pinned: dict[str, tuple[Version, list[str]]] = {}
    for entry in filter(str.strip, entries):
        requirement = Requirement(entry.split("\\")[0].strip())
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", (
            f"{lock}.lock: {entry.splitlines()[0]} not pinned"
        )
        pinned[canonicalize_name(requirement.name)] = (
            Version(specifiers[0].version),
            re.findall(r"--hash=(\S+)", entry),
        )
    return pinned


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pinned_package_has_a_sha256_hash(lock: str) -> None:
    pinned = pins(lock)
    assert len(pinned) > 20
    for name, (_version, hashes) in pinned.items():
        assert hashes and all(h.startswith("sha256:") for h in hashes), f"{lock}.lock: {name} has no hash"


def test_run_lock_pins_every_runtime_dependency_and_no_test_or_bench_tool() -> None:
    run = pins("run")
    assert requirement_names(project()["dependencies"]) <= set(run)
    assert "setuptools" in run  # the build backend of `pip install --no-deps --no-build-isolation -e .`
    assert not TOOLS & set(run), "make run installs only what running needs"


def test_dev_lock_pins_every_extra_and_agrees_with_the_run_lock() -> None:
    dev, run = pins("dev"), pins("run")
    extras = project()["optional-dependencies"]
    assert requirement_names([r for group in ("test", "bench", "dev") for r in extras[group]]) <= set(dev)
    assert {name: version for name, (version, _) in run.items()} == {name: dev[name][0] for name in run}, (
        "one version of each package in both locks: a dev install serves make run"
    )


def imported_top_level_modules(*packages: str) -> set[str]:
    modules: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"shop", "tasks", "__future__"}


def test_run_lock_pins_every_package_the_app_and_workers_import() -> None:
    run = pins("run")
    distributions = packages_distributions()
    imported = imported_top_level_modules("shop", "tasks")
    assert {"flask", "sqlalchemy", "celery"} <= imported
    for module in imported:
        assert module in distributions, f"{module} is imported but not installed"
        assert {canonicalize_name(d) for d in distributions[module]} & set(run), f"{module}: not in run.lock"


@pytest.mark.parametrize("lock", LOCKS)
def test_locked_versions_are_past_the_known_cves(lock: str) -> None:
    pinned = pins(lock)
    for name, floor in FLOORS.items():
        assert pinned[name][0] >= Version(floor), f"{lock}.lock: {name} {pinned[name][0]} < {floor}"


def test_pyproject_states_the_same_floors() -> None:
    declared = {canonicalize_name(Requirement(r).name): Requirement(r) for r in project()["dependencies"]}
    for name, floor in FLOORS.items():
        specifier = declared[canonicalize_name(name)].specifier
        assert specifier.contains(floor) and not specifier.contains(str(Version(floor).release[0] - 1)), name


def test_every_install_goes_through_a_lock_with_hashes_required() -> None:
    install = (ROOT / "scripts" / "install.sh").read_text()
    assert "--require-hashes -r" in install and "--no-deps" in install
    makefile = (ROOT / "Makefile").read_text()
    targets = dict(re.findall(r"^([a-z-]+):(.*)$", makefile, re.MULTILINE))
    assert targets["run"].split() == ["install"] and "install.sh run" in makefile
    for target in ("test", "test-fast", "lint", "bench", "audit"):
        assert targets[target].split() == ["install-dev"], target
    assert "--require-hashes -r requirements/run.lock" in (ROOT / "Dockerfile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make audit") < ci.index("make test")


def audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shop_audit", ROOT / "scripts" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# pip-audit's --format json report, as it writes it.
CLEAN = {"dependencies": [{"name": "flask", "version": "3.1.3", "vulns": []}], "fixes": []}
VULNERABLE = {
    "dependencies": [
        {"name": "flask", "version": "3.1.3", "vulns": []},
        {
            "name": "werkzeug",
            "version": "3.0.3",
            "vulns": [
                {
                    "id": "GHSA-q34m-jh98-gwm2",
                    "fix_versions": ["3.0.6"],
                    "aliases": ["CVE-2024-49767"],
                    "description": "multipart form parsing exhausts memory",
                }
            ],
        },
    ],
    "fixes": [],
}
UNREACHABLE = {
    "dependencies": [{"name": "flask", "skip_reason": "Dependency not found on PyPI and could not be audited"}],
    "fixes": [],
}


def test_audit_fails_on_a_known_vulnerability_whatever_the_setting() -> None:
    audit = audit_module()
    verdict = audit.judge(VULNERABLE)
    assert verdict.vulnerable == ["werkzeug 3.0.3: GHSA-q34m-jh98-gwm2 (CVE-2024-49767) fixed in 3.0.6"]
    assert verdict.exit_code(required=False) == 1 and verdict.exit_code(required=True) == 1
    assert audit.judge(CLEAN).exit_code(required=True) == 0


def test_an_audit_that_could_not_run_is_reported_and_fails_only_when_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    audit = audit_module()
    verdict = audit.judge(UNREACHABLE)
    assert verdict.unaudited and not verdict.vulnerable
    assert verdict.exit_code(required=False) == 0
    assert verdict.exit_code(required=True) == 1
    audit.report(verdict, required=False)
    assert "DEPENDENCY AUDIT INCOMPLETE" in capsys.readouterr().err
