"""Logging setup for entry points (services, training CLI); library modules only get loggers."""

import logging
import os

# Libraries that log one INFO line per HTTP call: at the gateway's rate that is two lines (and two
# unbuffered writes) per request, more CPU than the call itself. Their warnings still show.
QUIET_LOGGERS = ("httpx", "httpcore")


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
