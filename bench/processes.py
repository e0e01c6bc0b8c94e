"""Child processes of a benchmark run: started in their own process group, all stopped at the end.

Every process the bench starts goes through ``Processes.start`` so that one
``stop_all`` (called from a ``finally``, and on SIGTERM/SIGINT) ends them all,
group by group, by pid — never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def child_env(env: dict[str, str]) -> dict[str, str]:
    merged = {**os.environ, **env}
    merged["PATH"] = f"{BIN}:{merged.get('PATH', '')}"
    merged["PYTHONPATH"] = str(ROOT)
    return merged


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], logfile: Path) -> None:
        self.name, self.popen, self.logfile = name, popen, logfile

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_contains(self, needle: bytes) -> bool:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}); see {self.logfile}")
        return needle in self.logfile.read_bytes()

    def kill_group(self) -> None:
        """SIGKILL the process and everything in its group (a worker and its pool)."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
        except ProcessLookupError:
            pass
        # A pool child that outlived its parent still sits in the group.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Processes:
    """Registry of everything this run started."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        logfile = self.workdir / f"{name}.log"
        log = open(logfile, "ab")  # noqa: SIM115 - lives as long as the process
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        proc = Proc(name, popen, logfile)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=10)
        self.procs.clear()


# --- CPU accounting ---------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def tree_cpu_seconds(pids: list[int]) -> float:
    """utime+stime of the processes, their live descendants, and their reaped children."""
    tree, total, todo = _children(), 0.0, list(pids)
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is None:
            continue
        # fields[11..14] = utime, stime, cutime, cstime (stat fields 14..17)
        total += sum(int(x) for x in fields[11:15]) / CLK_TCK
        todo += tree.get(pid, [])
    return total


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
