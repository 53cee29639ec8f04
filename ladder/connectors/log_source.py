"""Where a log file is, as an environment names it: a model the runbook loader reads without
loading the log reader (and pandas) with it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class LogSource(BaseModel):
    """One log file of one host. ``path`` may be gzip-compressed (``.gz``)."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    format: Literal["auto", "rails", "lograge"] = "auto"
    host: str | None = None
