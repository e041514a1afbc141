"""Child processes that leave nothing behind: each in its own session, stopped with its whole tree.

A served deployment runs each flow run in a subprocess that Prefect may put in a session of its
own, and ``prefect server start`` runs its web server in a child: signalling one process group is
not enough. :func:`stop_tree` collects every descendant first (``ps``), signals them, waits, and
kills what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...), from ``ps`` (Linux and macOS)."""
    try:
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            children.setdefault(int(parts[1]), []).append(int(parts[0]))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Child:
    """A child process started in its own session, with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the child's log (for error messages)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20.0, first: int = signal.SIGTERM) -> None:
        """Signal the child and all its descendants, wait up to ``timeout``, then kill what is left."""
        stop_tree(self.process, timeout=timeout, first=first)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start ``argv`` in a new session (so a terminal's Ctrl-C reaches only us; we stop it ourselves)."""
    out: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - the child keeps it; closed when we drop the Popen
    try:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if not isinstance(out, int):
            out.close()
    return Child(name=name, process=process, log_path=log_path)


def stop_tree(
    process: subprocess.Popen[bytes], *, timeout: float = 20.0, first: int = signal.SIGTERM
) -> None:
    """Stop ``process`` and every descendant: ``first`` signal to all, then SIGKILL after ``timeout``."""
    tree = [process.pid, *descendants(process.pid)]
    if process.poll() is None:
        try:
            os.killpg(process.pid, first)  # its session's group (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in tree[1:]:
        _signal(pid, first)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Children may spawn while stopping; keep the list complete.
        tree += [p for p in descendants(process.pid) if p not in tree]
        if process.poll() is not None and not any(alive(p) for p in tree[1:]):
            break
        time.sleep(0.2)
    for pid in tree:
        if pid == process.pid and process.poll() is not None:
            continue
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
