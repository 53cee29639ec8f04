"""``ladder replica create``'s --param: one value, many, repeated, JSON."""

from __future__ import annotations

import pytest

from cli.replica import parse_params
from ladder.errors import ConfigError


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["user_ids=877"], {"user_ids": 877}),
        (["user_ids=1,2,3"], {"user_ids": [1, 2, 3]}),
        (["user_ids=[1,2]"], {"user_ids": [1, 2]}),
        (["user_ids=1", "user_ids=2"], {"user_ids": [1, 2]}),
        (["user_ids=1,2", "user_ids=3"], {"user_ids": [1, 2, 3]}),
        (["email=a@b.test", "email=c@d.test"], {"email": ["a@b.test", "c@d.test"]}),
        (["name=Smith, Ann", "n=5"], {"name": "Smith, Ann", "n": 5}),
    ],
)
def test_param_takes_one_value_or_many(pairs: list[str], expected: dict) -> None:
    assert parse_params(pairs) == expected


def test_param_without_a_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        parse_params(["877"])
