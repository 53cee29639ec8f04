"""Every rung's checkpoint can pause: Prefect refuses a pause key it cannot store a form under."""

from __future__ import annotations

import pytest
from prefect.types.names import raise_on_name_alphanumeric_dashes_only

from ladder.rungs import ladder
from tasks.checkpoints import pause_key


@pytest.mark.parametrize("name", [r.name for r in ladder()])
def test_the_pause_key_of_every_rung_is_one_prefect_accepts(name: str) -> None:
    for stored in (f"paused-{pause_key(name)}-schema", f"paused-{pause_key(name)}-response"):
        assert raise_on_name_alphanumeric_dashes_only(stored) == stored
    assert pause_key("local_replica") == "checkpoint-local-replica"
