"""py-spy on the worker and gunicorn process trees during the saturation run (``--profile``).

Writes the collapsed stacks and a top-functions summary under bench/results/profiles/.
"""

from __future__ import annotations

import collections
import signal
import subprocess
from pathlib import Path
from typing import Any

from bench.processes import BIN


class Profiler:
    def __init__(self, workdir: Path, results: Path) -> None:
        self.workdir = workdir
        self.out = results / "profiles"
        self.spies: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, shop: Any) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        targets = {"worker": shop.workers[0].pid, "web": shop.web.pid}
        for name, pid in targets.items():
            self.spies[name] = subprocess.Popen(
                [
                    str(BIN / "py-spy"),
                    "record",
                    "-p",
                    str(pid),
                    "--subprocesses",
                    "--nonblocking",
                    "-r",
                    "200",
                    "-d",
                    "120",
                    "-f",
                    "raw",
                    "-o",
                    str(self.out / f"{name}.collapsed"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def stop(self) -> None:
        for spy in self.spies.values():
            spy.send_signal(signal.SIGINT)
        for spy in self.spies.values():
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()

    def summary(self, top: int = 25) -> dict[str, Any]:
        out = {}
        for name in self.spies:
            path = self.out / f"{name}.collapsed"
            if path.exists():
                out[name] = summarise(path, top)
                (self.out / f"{name}-top.txt").write_text(render(out[name]))
        return out


def summarise(path: Path, top: int) -> dict[str, Any]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")[1:]]  # first frame is the process
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    pct = lambda c: round(100 * c / max(total, 1), 1)  # noqa: E731
    return {
        "samples": total,
        "inclusive": [(f, pct(c)) for f, c in inclusive.most_common(top)],
        "self": [(f, pct(c)) for f, c in own.most_common(top)],
    }


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = file.split("/")
    tail = "/".join(parts[-2:]) if "site-packages" in file or "lib/python" in file else "/".join(parts[-3:])
    return f"{name} ({tail})"


def render(summary: dict[str, Any]) -> str:
    lines = [f"samples: {summary['samples']}", "", "inclusive %:"]
    lines += [f"  {p:5.1f}  {f}" for f, p in summary["inclusive"]]
    lines += ["", "self %:"] + [f"  {p:5.1f}  {f}" for f, p in summary["self"]]
    return "\n".join(lines) + "\n"
