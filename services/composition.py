"""The composition root: the one place that knows every service, and wires them into `wuguan`.

Each service declares itself once, in its cli.py (name, health and metrics port, worker
definition, commands); finance declares the read side. The kernel (services/common) imports
none of them: the `wuguan` command, the local stack (`wuguan run`), the workers and the settings
get the services from REGISTRY. A new service is its folder and one line in REGISTRY.

It lives in the services package, above the kernel and the services, so the image and the
package build (which ship `services` and `schemas`) carry it unchanged.
"""
from __future__ import annotations

import sys

from services.billing_guard.cli import DECLARATION as BILLING_GUARD
from services.cards.cli import DECLARATION as CARDS
from services.common import cli
from services.common.service_registry import ServiceRegistry
from services.dunning.cli import DECLARATION as DUNNING
from services.finance.cli import DECLARATION as FINANCE

# In the order `wuguan run` starts them.
REGISTRY = ServiceRegistry(services=(BILLING_GUARD, DUNNING, CARDS), read_side=FINANCE)
SERVICES = REGISTRY.names


def parser():
    """`wuguan`'s argument parser, every command of the house on it."""
    return cli.parser(REGISTRY)


def main(argv: list[str] | None = None) -> int:
    """The `wuguan` console script ([project.scripts] in pyproject.toml)."""
    return cli.main(REGISTRY, argv)


if __name__ == "__main__":
    sys.exit(main())
