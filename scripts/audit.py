"""Known vulnerabilities in the pinned dependencies: pip-audit over requirements/dev.lock.

Usage: ``.venv/bin/python scripts/audit.py [LOCK]`` (``make audit``; CI runs it before the tests).

Exit 1 when a pinned version has a known vulnerability: upgrade the pin (``make lock
ARGS="--upgrade-package NAME"``). When the vulnerability service cannot answer (no network, or an
index without PyPI's per-release JSON API), the audit did not happen: that is printed in a banner
on stderr, and fails only when ``AUDIT_REQUIRED=1``. A missing answer is not a finding, and CI on a
machine that cannot reach the service would otherwise never pass; see docs/security.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Verdict:
    vulnerable: list[str] = field(default_factory=list)  # "name version: ID (aliases) fixed in …"
    unaudited: list[str] = field(default_factory=list)  # why a package could not be checked
    audited: int = 0

    def exit_code(self, required: bool) -> int:
        if self.vulnerable:
            return 1
        return 1 if required and self.unaudited else 0


def judge(report: dict[str, Any]) -> Verdict:
    """Reads pip-audit's JSON report (``--format json``)."""
    verdict = Verdict()
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            verdict.unaudited.append(str(dep["skip_reason"]))
            continue
        verdict.audited += 1
        for vuln in dep.get("vulns", []):
            aliases = ", ".join(vuln.get("aliases", []))
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
            verdict.vulnerable.append(
                f"{dep['name']} {dep.get('version', '?')}: {vuln['id']} ({aliases}) fixed in {fixes}"
            )
    return verdict


def run_pip_audit(lock: Path) -> Verdict:
    command = [
        str(ROOT / ".venv" / "bin" / "pip-audit"),
        "--format",
        "json",
        "--progress-spinner",
        "off",
        # The lock pins and hashes everything: nothing to resolve, nothing to install.
        "--disable-pip",
        "--require-hashes",
        "-r",
        str(lock),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    try:
        return judge(json.loads(result.stdout))
    except ValueError:
        # pip-audit itself failed (e.g. the service refused the connection): no report at all.
        errors = [line for line in result.stderr.splitlines() if line and not line.startswith("WARNING: Location")]
        return Verdict(unaudited=[f"pip-audit exited {result.returncode}: {' / '.join(errors[-3:])}"])


def report(verdict: Verdict, required: bool) -> None:
    for line in verdict.vulnerable:
        print(f"VULNERABLE  {line}", file=sys.stderr)
    if verdict.unaudited:
        bar = "!" * 78
        print(bar, file=sys.stderr)
        print(
            f"DEPENDENCY AUDIT INCOMPLETE: {len(verdict.unaudited)} packages could not be checked for known"
            f" vulnerabilities ({verdict.audited} were). First reason: {verdict.unaudited[0]}",
            file=sys.stderr,
        )
        print(
            "The vulnerability service did not answer; this is "
            + ("an error (AUDIT_REQUIRED=1)." if required else "not an error here (set AUDIT_REQUIRED=1 to fail)."),
            file=sys.stderr,
        )
        print(bar, file=sys.stderr)
    elif not verdict.vulnerable:
        print(f"dependency audit: no known vulnerabilities in {verdict.audited} pinned packages")


def main(argv: list[str]) -> int:
    lock = Path(argv[1]) if len(argv) > 1 else ROOT / "requirements" / "dev.lock"
    required = os.environ.get("AUDIT_REQUIRED", "") == "1"
    verdict = run_pip_audit(lock)
    report(verdict, required)
    return verdict.exit_code(required)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
