"""The block `wuguan run` prints at start: where everything is, a token, and how to stop."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table


@dataclass(frozen=True)
class Connection:
    database_url: str
    bootstrap: str
    api_url: str
    dashboard_url: str
    token: str  # auditor role (dashboard and audit trails); the API only reads
    token_command: str
    metrics_urls: tuple[str, ...]
    log_dir: Path
    checkpoint_key: str = ""  # the workers sign checkpoints of their chains with it (issue 14)


def token_command(dev_secret: str | None) -> str:
    """How to mint another token; the secret is shown only when it is the built-in development one."""
    prefix = f"WUGUAN_API_SECRET={dev_secret} " if dev_secret else ""
    return f"{prefix}wuguan api-token --role finance   # or --role auditor"


def token_of(dashboard_url: str) -> str:
    """The token `spawn_api` put in the dashboard URL's fragment (one mint, one place)."""
    return dashboard_url.partition("#token=")[2]


def render_connection(c: Connection) -> Table:
    table = Table(title="Wuguan is running", title_justify="left", show_header=False, box=None, padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("DATABASE_URL", c.database_url)
    table.add_row("broker", f"KAFKA_BOOTSTRAP_SERVERS={c.bootstrap}")
    table.add_row("API", f"{c.api_url}  (header: Authorization: Bearer $TOKEN)")
    table.add_row("dashboard", c.dashboard_url)
    table.add_row("TOKEN", f"{c.token}  (auditor, read-only, 12 h)")
    table.add_row("new token", c.token_command)
    table.add_row("metrics", "  ".join(c.metrics_urls))
    table.add_row("logs", str(c.log_dir))
    if c.checkpoint_key:
        table.add_row("checkpoints", f"signed with {c.checkpoint_key}; check the store against them:"
                                     f" WUGUAN_CHECKPOINT_KEY={c.checkpoint_key} wuguan verify --checkpoints")
    table.add_row("stop", f"Ctrl-C (or kill -TERM {os.getpid()}): workers drain and stop, then the broker and"
                          " Postgres, within 10 s")
    return table
