"""prefect.yaml is the one deployment manifest: `ladder serve` serves exactly what it lists, every
entry point is a flow, and every parameter the UI's form shows has a description."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.flows import Flow
from prefect.utilities.callables import parameter_schema

from cli import entrypoints, serving
from ladder.errors import ConfigError

DEPLOYMENTS = serving.manifest()


def test_the_manifest_lists_the_three_deployments_and_the_cli_entry_points() -> None:
    assert [d.name for d in DEPLOYMENTS] == ["escalate-incident", "refresh-staging", "janitor"]
    listed = {d.entrypoint for d in DEPLOYMENTS}
    assert {entrypoints.ESCALATE, entrypoints.REFRESH_STAGING, entrypoints.JANITOR} <= listed


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_each_entrypoint_is_an_existing_flow(deployment: serving.ManifestDeployment) -> None:
    path, _, name = deployment.entrypoint.partition(":")
    assert (entrypoints.PROJECT_ROOT / path).is_file()
    flow = entrypoints.load_flow(deployment.entrypoint)
    assert isinstance(flow, Flow)
    assert flow.fn.__name__ == name


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_every_parameter_has_a_description_in_the_form(
    deployment: serving.ManifestDeployment,
) -> None:
    schema = parameter_schema(entrypoints.load_flow(deployment.entrypoint)).model_dump()
    undescribed = [
        name for name, prop in schema["properties"].items() if not prop.get("description")
    ]
    assert undescribed == []
    # the manifest's defaults are parameters the flow has, and the runbooks they name exist
    assert set(deployment.parameters) <= set(schema["properties"])
    if "runbook" in deployment.parameters:
        assert (entrypoints.PROJECT_ROOT / deployment.parameters["runbook"]).is_file()


def test_ladder_serve_serves_what_the_manifest_lists() -> None:
    served = serving.runner_deployments()
    assert [d.name for d in served] == [d.name for d in DEPLOYMENTS]
    by_name = {d.name: d for d in served}
    for d in DEPLOYMENTS:
        runner = by_name[d.name]
        assert runner.description == d.description
        assert runner.tags == d.tags
        assert runner.parameters == d.parameters
        assert len(runner.schedules or []) == len(d.schedules)
    (cron,) = by_name["refresh-staging"].schedules
    assert cron.schedule.cron == "0 4 * * *" and cron.schedule.timezone == "UTC"
    (interval,) = by_name["janitor"].schedules
    assert interval.schedule.interval.total_seconds() == 60


def test_a_runbook_given_to_serve_replaces_only_the_escalate_default() -> None:
    served = {d.name: d for d in serving.runner_deployments("/srv/runbooks/mine.yaml")}
    assert served["escalate-incident"].parameters == {"runbook": "/srv/runbooks/mine.yaml"}
    assert served["refresh-staging"].parameters == {}


def test_a_deployment_key_serve_cannot_apply_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load(serving.MANIFEST.read_text())
    doc["deployments"][0]["triggers"] = [{"enabled": True}]
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="cannot serve triggers"):
        serving.manifest(path)
