"""Rung 4 without services: the trace parser, the probe allow-list, selectors, and the
guardrails, which refuse before anything is connected to (the hosts named here do not exist)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from ladder.config import load_runbook
from ladder.errors import ConfigError, GuardrailError
from ladder.incident import Incident
from ladder.rungs import ClimbState
from ladder.rungs.staging_trace import StagingTraceSettings, run
from ladder.trace.parse import parse_trace
from ladder.trace.probes import allowed_probe, check_selector
from ladder.trace.summary import scrub_trace_text

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "runbooks" / "probes"

TRACE = """\
*** attached to process 4121
Shop::CheckoutService#call
  Shop::Order.latest_for(user_id=2)
    Shop::DB.query(sql="SELECT id FROM orders WHERE user_id = $1 LIMIT 1") <0.000461>
  Shop::Order.latest_for <0.000610>
  Shop::Payment#capture!
    Shop::DB.query(sql="SELECT id, amount_cents FROM payments WHERE order_id = $1") <0.000195>
  Shop::Payment#capture! <0.000221>
Shop::CheckoutService#call <0.004862>

Shop::Payment#capture! <0.000377>
*** detached from process 4121
RAISED NoMethodError: undefined method `amount_cents' for nil:NilClass IN Shop::Payment#capture! AT /app/models/payment.rb:19
"""


def test_call_trees_with_timings() -> None:
    trace = parse_trace(TRACE)
    root, leaf = trace.calls
    assert (root.name, root.seconds) == ("Shop::CheckoutService#call", 0.004862)
    assert [c.name for c in root.children] == ["Shop::Order.latest_for", "Shop::Payment#capture!"]
    assert root.children[0].args == "user_id=2"
    assert root.children[1].children[0].seconds == 0.000195
    assert (leaf.name, leaf.seconds, leaf.children) == ("Shop::Payment#capture!", 0.000377, [])
    assert trace.slowest(1)[0].name == "Shop::CheckoutService#call"
    assert trace.sql() == [
        "SELECT id FROM orders WHERE user_id = $1 LIMIT 1",
        "SELECT id, amount_cents FROM payments WHERE order_id = $1",
    ]
    assert trace.raised[0].where == "Shop::Payment#capture!"
    assert trace.unparsed == []
    assert trace.messages == ["attached to process 4121", "detached from process 4121"]


def test_an_exception_from_an_eval_is_an_error_not_a_result() -> None:
    trace = parse_trace('>> load "/x/p.rb"\n=> #<NameError: uninitialized constant Shop>\n'
                        ">> 1\n=> 1\n>> Shop\n=> #<Shop::Payment:0x000055d5 @order=nil>\n")  # fmt: skip
    assert [(r.cls, r.message) for r in trace.raised] == [
        ("NameError", "uninitialized constant Shop")
    ]
    assert trace.evals[1] == ("1", "1")


def test_trace_output_is_scrubbed_and_still_parses() -> None:
    text = 'Shop::User.find_by(email="ann.lee@example.org") <0.001000>'
    scrubbed = scrub_trace_text(text)
    assert "ann.lee" not in scrubbed
    assert parse_trace(scrubbed).calls[0].seconds == 0.001


def test_shipped_probes_match_their_allow_list() -> None:
    listed = yaml.safe_load((PROBES / "allowlist.yaml").read_text())["probes"]
    for name, entry in listed.items():
        assert hashlib.sha256((PROBES / name).read_bytes()).hexdigest() == entry["sha256"], name
        probe = allowed_probe(f"probes/{name}", PROBES)
        assert probe.undo is not None and probe.undo.name == entry["undo"]
    assert sorted(p.name for p in PROBES.glob("*.rb") if ".undo." not in p.name) == sorted(listed)


@pytest.mark.parametrize(
    ("probe", "why"),
    [
        ("../evil.rb", "directly in"),
        ("probes/sub/x.rb", "directly in"),
        ("/etc/passwd", "directly in"),
        ("probes/unlisted.rb", "not in the allow-list"),
        ("probes/exceptions.rb", "changed since it was reviewed"),
    ],
)
def test_probes_outside_the_allow_list_are_refused(tmp_path: Path, probe: str, why: str) -> None:
    shutil.copytree(PROBES, tmp_path / "probes")
    (tmp_path / "probes" / "unlisted.rb").write_text("true\n")
    with (tmp_path / "probes" / "exceptions.rb").open("a") as f:
        f.write("system('id')\n")
    with pytest.raises(GuardrailError, match=why) as caught:
        allowed_probe(probe, tmp_path / "probes")
    assert "\n" not in str(caught.value)


def test_a_probe_that_installs_something_needs_an_undo(tmp_path: Path) -> None:
    shutil.copytree(PROBES, tmp_path / "probes")
    text = "$ladder_seen = true\n"
    (tmp_path / "probes" / "reads.rb").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    listed = yaml.safe_load((tmp_path / "probes" / "allowlist.yaml").read_text())
    listed["probes"]["reads.rb"] = {"sha256": digest}
    (tmp_path / "probes" / "allowlist.yaml").write_text(yaml.safe_dump(listed))
    with pytest.raises(GuardrailError, match="installs something but names no undo"):
        allowed_probe("probes/reads.rb", tmp_path / "probes")
    listed["probes"]["reads.rb"]["installs"] = False
    (tmp_path / "probes" / "allowlist.yaml").write_text(yaml.safe_dump(listed))
    assert allowed_probe("probes/reads.rb", tmp_path / "probes").undo is None


@pytest.mark.parametrize(
    "selector", ["Shop::Payment#capture!(`id`)", "Foo#bar(system('rm'))", "eval", "Foo#bar; x"]
)
def test_selectors_with_ruby_in_them_are_refused(selector: str) -> None:
    with pytest.raises(GuardrailError, match="refused method selector"):
        check_selector(selector)


def _state(tmp_path: Path, rung: dict[str, object]) -> tuple[ClimbState, StagingTraceSettings]:
    shutil.copytree(PROBES, tmp_path / "probes")
    env = {
        "name": "shop-staging",
        "staging": {
            "database": {"dsn": "host=db.invalid dbname=staging"},
            "app_url": "http://staging.invalid",
            "ssh": {"host": "staging-1.invalid", "user": "deploy", "known_hosts": "/nonexistent"},
            "hosts": ["staging-1.invalid", "staging-2.invalid"],
        },
    }
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    settings = {"probes": ["probes/exceptions.rb"], "max_duration_seconds": 120,
                "requests": [{"path": "/checkout", "method": "POST"}], **rung}  # fmt: skip
    runbook = {"name": "t", "environment": "env.yaml", "rungs": {"staging_trace": settings}}
    (tmp_path / "runbook.yaml").write_text(yaml.safe_dump(runbook))
    loaded = load_runbook(tmp_path / "runbook.yaml")
    incident = Incident(id="i", title="t", started_at="2026-01-01T00:00:00Z",
                        ended_at="2026-01-01T01:00:00Z")  # fmt: skip
    state = ClimbState(incident, loaded.environment, loaded.path, owner="unit")
    chosen = loaded.runbook.rungs.settings("staging_trace")
    assert isinstance(chosen, StagingTraceSettings)
    return state, chosen


@pytest.mark.parametrize(
    ("rung", "why"),
    [
        (
            {"host": "prod-web-1.invalid"},
            "refused host 'prod-web-1.invalid': environment "
            "'shop-staging' marks as staging only staging-1.invalid, staging-2.invalid",
        ),
        ({"duration_seconds": 121}, "refused duration 121 s: the runbook allows at most 120 s"),
        ({"probes": ["../../etc/evil.rb"]}, "refused probe '../../etc/evil.rb'"),
        ({"methods": ["Kernel#system(`id`)"]}, "refused method selector"),
    ],
)
def test_guardrails_refuse_with_one_line(tmp_path: Path, rung: dict[str, object], why: str) -> None:
    """What a checkpoint form hands the runner is checked again, before any connection."""
    state, settings = _state(tmp_path, {})
    edited = StagingTraceSettings.model_validate({**settings.model_dump(), **rung})
    with pytest.raises(GuardrailError) as caught:
        run(state, edited)
    assert str(caught.value).startswith(why)
    assert "\n" not in str(caught.value)


def test_a_form_cannot_raise_the_runbooks_maximum(tmp_path: Path) -> None:
    state, settings = _state(tmp_path, {})
    edited = settings.model_copy(update={"duration_seconds": 900, "max_duration_seconds": 3600})
    with pytest.raises(GuardrailError, match="at most 120 s"):
        run(state, edited)


@pytest.mark.parametrize(
    ("rung", "why"),
    [
        ({"host": "prod-web-1.invalid"}, "is not among the environment's staging hosts"),
        ({"duration_seconds": 121}, "above max_duration_seconds"),
        ({"probes": ["probes/unlisted.rb"]}, "not in the allow-list"),
        ({"methods": ["Kernel#system(`id`)"]}, "refused method selector"),
    ],
)
def test_runbook_check_refuses_the_same(tmp_path: Path, rung: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        _state(tmp_path, rung)


SLOW = """\
IO.select <0.398131>
                PG.connect <0.011009>
              Shop::DB.query <0.014495>
            Shop::Order.latest_for <0.014552>
              Shop::DB.query <0.023811>
            Shop::Payment#capture! <0.023874>
          Shop::CheckoutService#call <0.038464>
"""


def test_slow_calls_are_put_back_under_the_call_printed_after_them() -> None:
    trace = parse_trace(SLOW)
    select, checkout = trace.calls
    assert (select.name, select.children) == ("IO.select", [])
    assert checkout.name == "Shop::CheckoutService#call"
    assert [c.name for c in checkout.children] == [
        "Shop::Order.latest_for",
        "Shop::Payment#capture!",
    ]
    assert [c.name for c in checkout.children[0].children] == ["Shop::DB.query"]
    assert checkout.children[0].children[0].children[0].name == "PG.connect"
    assert len(trace.all_calls()) == 7
