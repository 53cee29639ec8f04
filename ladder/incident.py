"""The Incident: what every entry point (CLI, UI, webhook, sandbox) hands to the escalate flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Source = Literal["manual", "sandbox", "sentry", "datadog", "alertmanager", "pagerduty", "webhook"]


class Incident(BaseModel):
    """A production problem to investigate.

    ``started_at``/``ended_at`` bound the incident window (UTC). ``params`` carries the values the
    rungs bind into queries and commands (``user_id``, ``request_id``, ``endpoint``, …); they are
    always passed as bind parameters or quoted arguments, never pasted into SQL or shell text.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
    title: str = Field(max_length=500)
    source: Source = "manual"
    started_at: datetime
    ended_at: datetime | None = None
    service: str | None = None
    fingerprint: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str | int | list[str] | list[int]] = Field(default_factory=dict)

    @field_validator("started_at", "ended_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Incident:
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self

    def window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The incident window; an open incident runs until ``now``."""
        end = self.ended_at or (now or datetime.now(UTC))
        return self.started_at, end

    def baseline(self, minutes: int) -> tuple[datetime, datetime]:
        """The ``minutes`` before the window, used as the normal to compare against."""
        return self.started_at - timedelta(minutes=minutes), self.started_at
