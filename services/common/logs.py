"""Log formats: readable text for people (the default) or one JSON object a line for machines.

`--log-format json` (or WUGUAN_LOG_FORMAT=json, which `wuguan run` passes to the workers it
starts) uses python-json-logger. Fields a log call passes in `extra` (decisionId, streamId,
ruleIds, topic, partition, offset, code) become keys of the object. Log calls carry ids and
codes only, never an input's values (A.PRIVACY), whichever the format.
"""
from __future__ import annotations

import logging.config
import os

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATS = ("text", "json")


def log_format(requested: str | None = None) -> str:
    chosen = requested or os.environ.get("WUGUAN_LOG_FORMAT") or "text"
    return chosen if chosen in FORMATS else "text"


def logging_config(fmt: str, level: str = "INFO") -> dict:
    """A logging.config.dictConfig for the format, to standard error."""
    formatter = {"format": TEXT_FORMAT} if fmt == "text" else {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"wuguan": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "wuguan", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
    }


# Libraries that log a connection failure themselves, before the command's one-line message
# (cli_failures) says the same with the fix: one-shot commands keep them quiet.
CHATTY_CLIENTS = ("aiokafka", "asyncpg")


def configure_logging(requested: str | None = None, level: str = "INFO", one_shot: bool = False) -> str:
    """Configure the root logger; returns the format chosen (exported for child processes)."""
    fmt = log_format(requested)
    os.environ["WUGUAN_LOG_FORMAT"] = fmt
    logging.config.dictConfig(logging_config(fmt, level))
    if one_shot:
        for name in CHATTY_CLIENTS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return fmt
