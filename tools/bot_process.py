"""A bot process for the end-to-end tests and the benchmarks: `python bot.py` (or another
script) on a free port of 127.0.0.1, logging to a file, stoppable with SIGINT as a
person would (so shutdown hooks run) and restartable on the same data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def no_proxy_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without proxy variables: everything here talks to 127.0.0.1."""
    env = dict(os.environ if base is None else base)
    for name in PROXY_VARIABLES:
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


class BotProcess:
    def __init__(
        self, workdir: Path, env: dict[str, str] | None = None, *, script: str = "bot.py"
    ) -> None:
        self.workdir = workdir
        self.env = dict(env or {})
        self.script = script
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/onebot/v11/ws"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{Path(self.script).stem}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = no_proxy_env()
        # Unbuffered, so that the log can be read while the process runs.
        env.update(
            {"HOST": "127.0.0.1", "PORT": str(self.port), "PYTHONUNBUFFERED": "1", **self.env}
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, self.script],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def tracebacks(self) -> int:
        return self.log().count("Traceback")
