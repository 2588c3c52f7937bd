"""What a service tells the house about itself, declared once, and the registry that holds them.

The kernel knows no service by name: services/composition.py, the composition root, builds one
ServiceRegistry from each service's declaration (its cli.py) and finance's, and hands it to the
`wuguan` command, the local stack and the settings. Adding a service is its folder plus one line
there.

Everything a declaration points at is imported on use: a service's worker pulls in faust, which
would make every `wuguan` command most of a second slower to start.
"""
from __future__ import annotations

import argparse
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the worker module starts faust; a declaration only names it
    from .runtime.worker import ServiceDefinition


@dataclass(frozen=True)
class Command:
    """One `wuguan` subcommand a service adds: what runs it, and whether it serves until stopped
    (its logs are then a process's: the clients' own connection errors stay visible)."""

    run: Callable[[argparse.Namespace], int]
    serves: bool = False


# Adds a service's subparsers to `wuguan`'s and returns how to run each, by command name.
AddCommands = Callable[[argparse._SubParsersAction], Mapping[str, Command]]


def no_commands(sub: argparse._SubParsersAction) -> Mapping[str, Command]:
    return {}


@dataclass(frozen=True)
class ServiceDeclaration:
    """A deciding service: its name (its decision and timer topics and its policy file go by it), the port
    of its health and metrics page unless WUGUAN_<NAME>_PORT says otherwise, its worker's
    definition (decider and policy loading) and its CLI commands."""

    name: str
    web_port: int
    definition: Callable[[], ServiceDefinition]
    add_commands: AddCommands = no_commands


@dataclass(frozen=True)
class ReadSideDeclaration:
    """Finance, the read side: its migrations (which run the event store's first), how `wuguan run`
    starts its API process (returns the process and the dashboard URL), the secret that process
    signs with when none is configured, and its CLI commands."""

    migrate: Callable[[object], Awaitable[list[str]]]
    start_api: Callable[[dict, Path], tuple[subprocess.Popen, str]]
    development_secret: Callable[[], str]
    add_commands: AddCommands = no_commands


@dataclass(frozen=True)
class ServiceRegistry:
    """The services of one house, in the order they start, and its read side."""

    services: tuple[ServiceDeclaration, ...]
    read_side: ReadSideDeclaration

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"a service is declared twice: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    @property
    def web_ports(self) -> dict[str, int]:
        """Each service's default health and metrics port (config.Settings reads the overrides)."""
        return {service.name: service.web_port for service in self.services}

    def service(self, name: str) -> ServiceDeclaration:
        return {service.name: service for service in self.services}[name]

    def command_adders(self) -> tuple[AddCommands, ...]:
        """Every service's, then finance's."""
        return (*(service.add_commands for service in self.services), self.read_side.add_commands)
