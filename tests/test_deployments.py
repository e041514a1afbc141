"""Deployments from the org registry: schedules per org, prefect.yaml kept in step, housekeeping."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml
from typer.testing import CliRunner

from deployments.registry import (
    CHANNELS_ENTRYPOINT,
    FLEET_ENTRYPOINT,
    HOUSEKEEPING_ENTRYPOINT,
    SYNC_ENTRYPOINT,
    registry_deployments,
    registry_specs,
    render_prefect_yaml,
)
from zxsync.settings import REPO_ROOT, get_settings

DEMO_YAML = REPO_ROOT / "orgs" / "demo.yaml"


def _org_file(folder: Path, slug: str, timezone: str, schedules: list[str] | None) -> None:
    data = yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8"))
    data["slug"], data["name"], data["timezone"] = slug, f"{slug.title()} Ltd", timezone
    data["xero"]["connection"], data["zoho"]["connection"] = f"{slug}-xero", f"{slug}-zoho"
    if schedules is None:
        data.pop("schedules", None)  # the default: 07:00 and 19:00 in the org's timezone
    else:
        data["schedules"] = schedules
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture()
def two_orgs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry of two orgs: acme (London, its own crons) and globex (New York, default schedules)."""
    folder = tmp_path / "orgs"
    folder.mkdir()
    _org_file(folder, "acme", "Europe/London", ["30 6 * * 1-5", "0 18 * * *"])
    _org_file(folder, "globex", "America/New_York", None)
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    get_settings.cache_clear()
    return folder


EXPECTED = {
    "acme": [("30 6 * * 1-5", "Europe/London"), ("0 18 * * *", "Europe/London")],
    "globex": [("0 7 * * *", "America/New_York"), ("0 19 * * *", "America/New_York")],
}


def test_one_deployment_per_org_with_its_schedules_in_its_timezone(two_orgs: Path) -> None:
    specs = {s.full_name: s for s in registry_specs()}
    assert sorted(specs) == [
        "housekeeping/daily",
        "sync-all/all-orgs",
        "sync-organisation/acme",
        "sync-organisation/globex",
        "zoho-channels/hourly",
    ]
    deployments = {d.name: d for d in registry_deployments()}
    for slug, crons in EXPECTED.items():
        deployment = deployments[slug]
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == crons
        # Scheduled runs say so (run name "acme · schedule · ..."); manual runs keep the default.
        assert all(s.parameters == {"options": {"trigger": "schedule"}} for s in deployment.schedules)
        assert deployment.parameters == {"org": slug}
        assert set(deployment.tags) == {"autosync", f"org:{slug}"}
        assert deployment.concurrency_limit == 1
        assert deployment.entrypoint.endswith("sync.py:sync_organisation")
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployments["daily"].schedules] == [
        ("30 3 * * *", "UTC")
    ]
    assert deployments["all-orgs"].schedules == []


def test_serving_only_some_orgs_leaves_out_the_others_and_sync_all(two_orgs: Path) -> None:
    # The demo serves just its org: other orgs must not run against the sandboxes.
    assert [s.full_name for s in registry_specs(only=["globex"])] == [
        "sync-organisation/globex",
        "housekeeping/daily",
        "zoho-channels/hourly",
    ]


def test_the_server_schedules_runs_at_the_orgs_local_times(two_orgs: Path, prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL

    deployments = {d.name: d for d in registry_deployments()}
    with get_client(sync_client=True) as client:
        for slug, crons in EXPECTED.items():
            deployment_id = deployments[slug].apply()
            stored = client.read_deployment(deployment_id)
            assert sorted((s.schedule.cron, s.schedule.timezone) for s in stored.schedules) == sorted(crons)
            # Ask the server to schedule the next days (its scheduler service does this by itself).
            now = datetime.now(UTC)
            answer = requests.post(
                f"{PREFECT_API_URL.value()}/deployments/{deployment_id}/schedule",
                json={
                    "start_time": now.isoformat(),
                    "end_time": (now + timedelta(days=8)).isoformat(),
                    "min_runs": 1,
                    "max_runs": 20,
                },
                timeout=60,
            )
            assert answer.status_code < 300, answer.text
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            assert runs
            zone = ZoneInfo(crons[0][1])
            local_times = {r.expected_start_time.astimezone(zone).strftime("%H:%M") for r in runs}
            wanted = {f"{int(c.split()[1]):02d}:{int(c.split()[0]):02d}" for c, _ in crons}
            assert local_times == wanted, (slug, local_times)
            for run in runs:
                assert run.parameters == {"org": slug, "options": {"trigger": "schedule"}}
                assert {"autosync", f"org:{slug}"} <= set(run.tags)


def test_committed_prefect_yaml_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZX_ORGS_DIR", raising=False)  # the repository's own registry
    get_settings.cache_clear()
    committed = (REPO_ROOT / "prefect.yaml").read_text(encoding="utf-8")
    assert committed == render_prefect_yaml(), "prefect.yaml is out of date: run `zxsync deployments render`"
    result = CliRunner().invoke(
        __import__("zxsync.cli", fromlist=["app"]).app, ["deployments", "render", "--check"]
    )
    assert result.exit_code == 0, result.output


def test_render_check_fails_when_the_registry_changed(two_orgs: Path, tmp_path: Path) -> None:
    from zxsync.cli import app

    target = tmp_path / "prefect.yaml"
    shutil.copy(REPO_ROOT / "prefect.yaml", target)
    result = CliRunner().invoke(app, ["deployments", "render", "--check", "--output", str(target)])
    assert result.exit_code == 1
    assert "out of date" in result.output and "+  - name: acme" in result.output
    assert CliRunner().invoke(app, ["deployments", "render", "--output", str(target)]).exit_code == 0
    assert (
        CliRunner().invoke(app, ["deployments", "render", "--check", "--output", str(target)]).exit_code == 0
    )


def test_prefect_yaml_is_not_tied_to_a_machine(two_orgs: Path) -> None:
    text = render_prefect_yaml()
    document = yaml.safe_load(text)
    assert document["pull"] == []  # no set_working_directory: workers import the installed package
    assert str(REPO_ROOT) not in text and str(Path.home()) not in text
    entrypoints = {d["entrypoint"] for d in document["deployments"]}
    assert entrypoints == {SYNC_ENTRYPOINT, HOUSEKEEPING_ENTRYPOINT, FLEET_ENTRYPOINT, CHANNELS_ENTRYPOINT}
    assert not any(".py" in e for e in entrypoints)
    by_name = {d["name"]: d for d in document["deployments"]}
    assert [(s["cron"], s["timezone"]) for s in by_name["acme"]["schedules"]] == EXPECTED["acme"]
    assert by_name["globex"]["schedules"][0]["parameters"] == {"options": {"trigger": "schedule"}}


def test_prefect_deploy_all_accepts_the_rendered_file(
    two_orgs: Path, tmp_path: Path, prefect_harness: None
) -> None:
    """`prefect deploy --all` (run elsewhere than the repository) stores module entrypoints, no pull
    steps, and the per-schedule parameters."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL

    project = tmp_path / "project"
    project.mkdir()
    (project / "prefect.yaml").write_text(render_prefect_yaml(work_pool="zxsync-test"), encoding="utf-8")
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="zxsync-test", type="process"))
        except ObjectAlreadyExists:
            pass
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PREFECT_HOME": str(tmp_path / "phome"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with get_client(sync_client=True) as client:
        for slug, crons in EXPECTED.items():
            stored = client.read_deployment_by_name(f"sync-organisation/{slug}")
            assert stored.entrypoint == SYNC_ENTRYPOINT
            assert stored.pull_steps == []
            assert stored.work_pool_name == "zxsync-test"
            assert sorted((s.schedule.cron, s.schedule.timezone) for s in stored.schedules) == sorted(crons)
            assert all(s.parameters == {"options": {"trigger": "schedule"}} for s in stored.schedules)
            assert stored.parameters == {"org": slug}
        housekeeping = client.read_deployment_by_name("housekeeping/daily")
        assert housekeeping.entrypoint == HOUSEKEEPING_ENTRYPOINT


def test_housekeeping_purges_old_journal_entries_and_stale_stages(prefect_harness: None) -> None:
    from flows.housekeeping import ARTIFACT_KEY, housekeeping
    from ledger import JournalEntry
    from tasks import runtime

    ledger = runtime.ledger()
    old = datetime.now(UTC) - timedelta(days=45)
    ledger.record(
        [
            JournalEntry(org="demo", action="create", outcome="ok", message="old", time=old),
            JournalEntry(org="demo", action="create", outcome="ok", message="recent"),
        ]
    )
    ledger.stage_put("demo", "run-1", "page-1", [{"id": 1}])
    counts = housekeeping(retention_days=30, stage_days=0)
    assert counts == {"journal_and_intents": 1, "staged_pages": 1}
    assert [j.message for j in ledger.journal_for("demo")] == ["recent"]
    from prefect.artifacts import Artifact

    assert Artifact.get(ARTIFACT_KEY) is not None
    runtime.reset()
