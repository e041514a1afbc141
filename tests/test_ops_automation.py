"""`zxsync automation create --webhook URL`: a failed sync run notifies a local HTTP listener."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from deployments.automations import AUTOMATION_NAME


def test_automation_create_stores_one_notification_on_failed_or_crashed_sync_runs(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored automation and its webhook block (it *fires* in tests/test_retry_resume.py: the
    test harness's ephemeral server runs no automation services, a real server does)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from deployments.automations import BLOCK_NAME
    from zxsync.cli import app

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    runner = CliRunner()
    for url in ("http://127.0.0.1:9/old", "http://127.0.0.1:9/hook"):  # the second create replaces the first
        result = runner.invoke(app, ["automation", "create", "--webhook", url])
        assert result.exit_code == 0, result.output
    with get_client(sync_client=True) as client:
        automations = client.read_automations_by_name(AUTOMATION_NAME)
    assert len(automations) == 1
    automation = automations[0]
    assert automation.enabled
    trigger = automation.trigger
    assert set(trigger.expect) == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    related = trigger.match_related[0] if isinstance(trigger.match_related, list) else trigger.match_related
    assert related.get("prefect.resource.name") == ["sync-organisation", "sync-all"]
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    (action,) = automation.actions
    assert action.type == "send-notification"
    assert "{{ flow_run|ui_url }}" in action.body
    block = CustomWebhookNotificationBlock.load(BLOCK_NAME)
    assert block.url == "http://127.0.0.1:9/hook" and block.method == "POST"


def test_automation_create_needs_a_prefect_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from zxsync.cli import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["automation", "create", "--webhook", "http://127.0.0.1:9/hook"])
    assert result.exit_code != 0
    assert "PREFECT_API_URL" in result.output
