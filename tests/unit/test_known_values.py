"""KnownValues: the one-pass matcher of original values (ladder.sanitize.known)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from ladder.sanitize.known import COMMON_WORDS, KnownValues
from ladder.sanitize.registry import get_transformer

KEY = b"k" * 32


def _known(pairs: dict[str, str | None], **kw) -> KnownValues:
    known = KnownValues(**kw)
    known.add(list(pairs), list(pairs.values()))
    return known.freeze()


def test_the_pseudonym_of_the_column_replaces_the_original() -> None:
    originals = pa.array(["Ann Smith", "Bob Jones"])
    pseudonyms = get_transformer("name").transform(originals, KEY).to_pylist()
    known = KnownValues()
    known.add(originals, pseudonyms)
    known.freeze()
    out = known.replace(pa.array(["Call Ann Smith", "ask bob jones", None, "", " "])).to_pylist()
    assert out == [f"Call {pseudonyms[0]}", f"ask {pseudonyms[1]}", None, "", " "]
    # deterministic: the name transformer gives the same pseudonym in another table
    again = get_transformer("name").transform(pa.array(["Ann Smith"]), KEY).to_pylist()
    assert again == pseudonyms[:1]


def test_whole_words_only_and_the_longest_hit_wins() -> None:
    known = _known({"Ann Smith": "P1", "Smith": "P2", "Smithson Ltd": "P3"})
    out = known.replace(pa.array(["Ann Smith, Smith & Smithers; Smithson Ltd", "xSmith"]))
    assert out.to_pylist() == ["P1, P2 & Smithers; P3", "xSmith"]


def test_short_digit_only_and_common_values_are_not_looked_up() -> None:
    known = _known({"Ann": "x", "8283238430": "y", "Will": "z", "May": "w", "Ann Lee": "v"})
    assert len(known) == 1  # only "Ann Lee"
    assert {"will", "may", "rose"} <= COMMON_WORDS
    assert known.replace(pa.array(["Ann will call 8283238430 in May"])).to_pylist() == [
        "Ann will call 8283238430 in May"
    ]


def test_single_words_keep_their_case_multi_words_and_emails_do_not() -> None:
    known = _known({"Smithers": "A", "Ann Lee": "B", "Ann@Corp.io": "C"})
    out = known.replace(pa.array(["smithers Smithers ann lee ann@corp.io"])).to_pylist()
    assert out == ["smithers A B C"]


def test_null_columns_give_filtered_and_json_stays_json() -> None:
    known = _known({'Ann "Nan" Smith': None, "Bob Jones": 'Carl "C" Diaz'})
    raw = json.dumps({"a": 'from Ann "Nan" Smith', "b": ["Bob Jones", 12]})
    (out,) = known.replace(pa.array([raw]), json_text=True).to_pylist()
    assert json.loads(out) == {"a": "from [FILTERED]", "b": ['Carl "C" Diaz', 12]}


def test_the_cap_bounds_memory_and_says_so() -> None:
    known = KnownValues(max_values=10)
    known.add([f"Person Number{i}" for i in range(50)], ["x"] * 50)
    assert len(known) == 10 and known.truncated
    with pytest.raises(RuntimeError):
        known.replace(pa.array(["x"]))  # not frozen


def test_the_gate_masks_pseudonyms_before_looking_for_originals() -> None:
    known = _known({"Mary Smith": "Jo Brown", "Jo Brown": "Al Green"})
    assert known.survives("met Mary Smith")
    # "Jo Brown" is an original too, but here it is what the copy wrote for Mary Smith
    assert not known.survives(known.replace(pa.array(["met Mary Smith"]))[0].as_py())
    assert not known.survives("nothing here")


def test_the_gate_counts_a_column_as_survives_judges_each_text() -> None:
    known = _known({"Mary Smith": "Jo Brown", "Jo Brown": "Al Green", "ann@corp.com": "x@example.org"})
    texts = ["met Mary Smith", "Jo Brown here", "mail ann@corp.com", "nothing", "", "Mary Smithers"]
    written = known.replace(pa.array(texts[:1])).to_pylist()
    column = pa.array([*texts, *written, None])
    assert known.count_survivors(column) == sum(known.survives(t) for t in [*texts, *written])
    assert known.count_survivors(column) == 2  # Mary Smith, ann@corp.com ("Jo Brown" was written)
