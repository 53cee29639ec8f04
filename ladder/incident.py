"""The Incident: what every entry point (CLI, UI, webhook, sandbox) hands to the escalate flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

TIME_FORMAT_HINT = (
    "write an ISO 8601 time such as 2026-05-04T13:20:00Z (UTC unless it has an offset)"
)

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

    @field_validator("started_at", "ended_at", mode="wrap")
    @classmethod
    def _utc(
        cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> datetime | None:
        try:
            parsed: datetime | None = handler(value)
        except ValidationError:
            raise ValueError(f"{value!r} is not a time: {TIME_FORMAT_HINT}") from None
        if parsed is None:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    @field_validator("ended_at")
    @classmethod
    def _ordered(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        started = info.data.get("started_at")
        if value is not None and started is not None and value < started:
            raise ValueError(
                f"ended_at ({value:%Y-%m-%d %H:%M:%S} UTC) is before started_at "
                f"({started:%Y-%m-%d %H:%M:%S} UTC)"
            )
        return value

    def window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The incident window; an open incident runs until ``now``."""
        end = self.ended_at or (now or datetime.now(UTC))
        return self.started_at, end

    def baseline(self, minutes: int) -> tuple[datetime, datetime]:
        """The ``minutes`` before the window, used as the normal to compare against."""
        return self.started_at - timedelta(minutes=minutes), self.started_at
