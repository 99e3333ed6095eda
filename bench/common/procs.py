"""Benchmark processes: start a server as a subprocess, wait until it answers, read its RSS and CPU time, stop it.

Linux only (reads ``/proc``). Every process is started in its own session so that stopping it also stops the
workers it forked; stopping is by process-group id of the process we started, never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    """A started server process; ``log`` holds its stdout and stderr."""

    name: str
    cmd: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, *, cwd: Path | None = None) -> "Proc":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "wb")
        env = {**os.environ, **self.env}
        self.popen = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True)
        out.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def wait_http(self, url: str, timeout_s: float, headers: dict[str, str] | None = None) -> float:
        """Poll GET ``url`` until it answers 2xx; return the seconds it took. Raises RuntimeError with the log tail
        when the process dies or the time runs out."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            try:
                req = urllib.request.Request(url, headers=headers or {})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if 200 <= resp.status < 300:
                        return time.monotonic() - t0
            except (urllib.error.URLError, OSError, ConnectionError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout_s:.0f} s:\n{self.tail()}")

    def pids(self) -> list[int]:
        """This process and all its descendants."""
        return tree_pids(self.pid) if self.alive() else []

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB, summed over the process tree (peak: sum of each process's VmHWM)."""
        cur = peak = 0.0
        for pid in self.pids():
            status = _status(pid)
            cur += status.get("VmRSS", 0) / 1024
            peak += status.get("VmHWM", 0) / 1024
        return cur, peak

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the process tree (live processes only)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        return total / _TICKS

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group we started, then SIGKILL it after ``grace_s``."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=5)


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants, from /proc/*/stat parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def machine_info() -> dict[str, str]:
    """CPU model, core count, load average and kernel: printed at the top of every result file."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"cpu": model, "cores": str(os.cpu_count()), "load average at start": load,
            "kernel": os.uname().release}
