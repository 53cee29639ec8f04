"""refresh-staging: a sanitized copy of production into staging, on a schedule.

The copy pipeline (subset, sanitize, validate, atomic swap) is issue 3. Until it lands, this flow
fails with a clear message instead of pretending to succeed.
"""

from __future__ import annotations

from prefect import flow

from ladder.errors import ConfigError


@flow(name="refresh-staging", description="Sanitized production data into staging.")
def refresh_staging(runbook: str = "runbooks/demo.yaml") -> None:
    """Refresh staging from the production replica named by ``runbook``'s environment."""
    raise ConfigError(
        "refresh-staging is not configured: the sanitized copy pipeline is not built yet in this "
        "version of Ladder (see the README, 'What is built')"
    )
