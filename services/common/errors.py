"""Errors that stop a process with a message an operator can act on."""


class ConfigError(Exception):
    """Configuration or policy is invalid; the message names the offending field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
