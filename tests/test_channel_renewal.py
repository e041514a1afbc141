"""Zoho notification channels kept alive by the ``zoho-channels/hourly`` deployment: on the Zoho
sandbox (its virtual clock stands in for the days between checks), a missing channel is created, a
healthy one kept, one near expiry renewed (its expiry moved forward), one already gone in Zoho
enabled again, and the channel of an org that no longer wants notifications removed; the
deployment is in the registry with its hourly schedule, in ``serve()`` and in prefect.yaml."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sandbox.server import RunningSandbox
from tests.e2e_support import ZohoReader, running_sandboxes
from zxsync.settings import REPO_ROOT, get_settings
from zxsync.webhooks.channels import CHANNELS_LEASE, ChannelKeeper
from zxsync.webhooks.intake import ZOHO_CHANNEL
from zxsync.webhooks.settings import WebhookSettings, get_webhook_settings

PUBLIC_URL = "http://127.0.0.1:9"  # never called: no watched record changes in these tests
DAY = 86400.0


def write_demo(folder: Path, *, notifications: bool) -> None:
    """orgs/demo.yaml with ``webhooks.zoho_notifications`` on or off."""
    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text(encoding="utf-8"))
    data["webhooks"] = {**(data.get("webhooks") or {}), "zoho_notifications": notifications}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@dataclass
class Box:
    zoho: RunningSandbox
    orgs: Path

    def clock(self) -> datetime:
        """The Zoho sandbox's virtual now."""
        now = requests.get(f"{self.zoho.url}/_sandbox/clock", timeout=30).json()["now"]
        return datetime.fromisoformat(now).astimezone(UTC)

    def advance(self, seconds: float) -> None:
        answer = requests.put(f"{self.zoho.url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=30)
        answer.raise_for_status()

    def channels(self) -> dict[str, dict[str, Any]]:
        """Zoho's live channels by id: events, notify URL, token and expiry (as Zoho lists them)."""
        reader = ZohoReader(self.zoho.url)  # a fresh token on the (maybe advanced) clock
        answer = requests.get(f"{self.zoho.url}/crm/v8/actions/watch", headers=reader.headers, timeout=30)
        if answer.status_code == 204:
            return {}
        answer.raise_for_status()
        out: dict[str, dict[str, Any]] = {}
        for row in answer.json()["watch"]:
            entry = out.setdefault(row["channel_id"], {"events": [], "notify_url": row["notify_url"],
                                                       "token": row["token"],
                                                       "expiry": datetime.fromisoformat(row["channel_expiry"])})
            entry["events"] += row["events"]
        return out

    def keeper(self) -> ChannelKeeper:
        """The keeper the flow builds, but reading the sandbox's clock (days pass in a second)."""
        from tasks import runtime

        return ChannelKeeper(runtime.ledger, runtime.zoho, get_webhook_settings(), now=self.clock)


@pytest.fixture()
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    """The Zoho (and Xero) sandbox, the demo org connected, notifications on, a public URL set."""
    from zxsync.onboarding import connect_sandbox

    orgs = tmp_path / "orgs"
    write_demo(orgs, notifications=True)
    monkeypatch.setenv("ZX_ORGS_DIR", str(orgs))
    monkeypatch.setenv("ZX_WEBHOOKS_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("ZX_WEBHOOKS_CHANNEL_DAYS", "6")
    monkeypatch.setenv("ZX_WEBHOOKS_RENEW_BEFORE_HOURS", "24")
    get_settings.cache_clear()
    get_webhook_settings.cache_clear()
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, onboard=None) as boxes:
        connect_sandbox("demo")
        yield Box(zoho=boxes.zoho, orgs=orgs)
    get_webhook_settings.cache_clear()


def stored_channel(org: str = "demo") -> Any:
    from tasks import runtime

    try:
        return runtime.ledger().load_webhook_secret(ZOHO_CHANNEL.format(org=org))
    except KeyError:
        return None


# --- the renewal paths on the sandbox ---------------------------------------------------------------
def test_the_flow_creates_a_missing_channel_then_keeps_the_healthy_one(box: Box, prefect_harness: None) -> None:
    from prefect.artifacts import Artifact

    from flows.channels import ARTIFACT_KEY, zoho_channels

    assert box.channels() == {} and stored_channel() is None
    [created] = zoho_channels()
    assert created["action"] == "created", created
    channels = box.channels()
    assert list(channels) == [created["channel_id"]]
    channel = channels[created["channel_id"]]
    assert channel["notify_url"] == f"{PUBLIC_URL}/webhooks/zoho/demo"
    assert "Invoices.create" in channel["events"] and "Invoices.edit" in channel["events"]
    stored = stored_channel()
    assert stored is not None and stored.meta["channel_id"] == created["channel_id"]
    assert channel["token"] == stored.secret.get_secret_value()  # callbacks will verify
    # Asked for 6 days (Zoho keeps a week at most) and Zoho granted them.
    assert timedelta(days=5.9) < channel["expiry"] - box.clock() <= timedelta(days=6)

    [kept] = zoho_channels()  # an hour later, say: nothing to do
    assert kept["action"] == "kept" and kept["channel_id"] == created["channel_id"]
    assert kept["expires_at"] == created["expires_at"]
    assert box.channels()[created["channel_id"]]["expiry"] == channel["expiry"]
    assert Artifact.get(ARTIFACT_KEY) is not None


def test_a_channel_near_expiry_is_renewed_and_one_gone_in_zoho_is_enabled_again(box: Box) -> None:
    keeper = box.keeper()
    [created] = keeper.ensure_all()
    assert created.action == "created"
    first_expiry = box.channels()[created.channel_id]["expiry"]
    token = stored_channel().secret.get_secret_value()

    box.advance(4 * DAY)  # two days left: more than the 24 h margin
    [kept] = keeper.ensure_all()
    assert kept.action == "kept" and kept.expires_at == created.expires_at

    box.advance(1.5 * DAY)  # half a day left: inside the margin
    [renewed] = keeper.ensure_all()
    assert renewed.action == "renewed" and renewed.channel_id == created.channel_id
    channel = box.channels()[created.channel_id]
    assert channel["expiry"] - first_expiry > timedelta(days=5)  # moved forward, in Zoho too
    assert timedelta(days=5.9) < channel["expiry"] - box.clock() <= timedelta(days=6)
    assert renewed.expires_at == channel["expiry"]
    # Same channel, same token: callbacks in flight during the renewal still verify.
    assert channel["token"] == token == stored_channel().secret.get_secret_value()

    box.advance(7 * DAY)  # nobody checked for a week: Zoho dropped the channel
    assert box.channels() == {}
    [again] = keeper.ensure_all()
    assert again.action == "renewed" and again.channel_id == created.channel_id  # PUT: gone -> POST
    assert list(box.channels()) == [created.channel_id]
    assert box.channels()[created.channel_id]["expiry"] - box.clock() > timedelta(days=5.9)


def test_the_channel_of_an_org_that_no_longer_wants_notifications_is_removed(
    box: Box, prefect_harness: None
) -> None:
    from flows.channels import zoho_channels

    [created] = box.keeper().ensure_all()
    assert created.action == "created" and list(box.channels()) == [created.channel_id]
    write_demo(box.orgs, notifications=False)
    [removed] = zoho_channels()
    assert removed["action"] == "removed" and removed["channel_id"] == created.channel_id
    assert box.channels() == {}
    assert stored_channel() is None  # token forgotten: a late callback is refused
    assert zoho_channels() == []  # nothing wanted, nothing stored: nothing to do


# --- without the sandbox -----------------------------------------------------------------------------
def test_the_flow_fails_when_a_channel_cannot_be_set_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      prefect_harness: None) -> None:
    from flows.channels import zoho_channels

    write_demo(tmp_path / "orgs", notifications=True)
    monkeypatch.setenv("ZX_ORGS_DIR", str(tmp_path / "orgs"))
    monkeypatch.delenv("ZX_WEBHOOKS_PUBLIC_URL", raising=False)
    get_settings.cache_clear()
    get_webhook_settings.cache_clear()
    try:
        state = zoho_channels(return_state=True)
        assert state.is_failed()
        assert "ZX_WEBHOOKS_PUBLIC_URL" in str(state.result(raise_on_failure=False))
    finally:
        get_webhook_settings.cache_clear()


def test_one_pass_at_a_time_the_server_thread_skips_while_the_deployment_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ledger import LeaseBusy
    from tasks import runtime

    write_demo(tmp_path / "orgs", notifications=True)
    monkeypatch.setenv("ZX_ORGS_DIR", str(tmp_path / "orgs"))
    get_settings.cache_clear()
    zoho_calls: list[str] = []
    keeper = ChannelKeeper(runtime.ledger, zoho_calls.append, WebhookSettings(public_url=None))
    with runtime.ledger().lease(CHANNELS_LEASE, "zoho-channels flow (test)", timeout=0, ttl=60):
        with pytest.raises(LeaseBusy):
            keeper.ensure_all(wait=0)
        stop = threading.Event()
        caplog.set_level("INFO", logger="zxsync.webhooks")
        thread = threading.Thread(target=keeper.run_forever, args=(stop,), daemon=True)
        thread.start()
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while "being checked elsewhere" not in caplog.text and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        stop.set()
        thread.join(10)
    assert "being checked elsewhere" in caplog.text and not thread.is_alive()
    assert zoho_calls == []
    # Free again: a pass goes through (and reports the missing public URL, without calling Zoho).
    [status] = keeper.ensure_all(wait=0)
    assert status.action == "failed" and zoho_calls == []
    runtime.reset()


# --- the deployment ----------------------------------------------------------------------------------
def test_the_renewal_deployment_is_served_and_rendered_with_its_hourly_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deployments.registry import (
        CHANNELS_ENTRYPOINT,
        registry_specs,
        render_prefect_yaml,
        to_runner_deployment,
    )

    monkeypatch.delenv("ZX_ORGS_DIR", raising=False)  # the repository's own registry
    get_settings.cache_clear()
    specs = {s.full_name: s for s in registry_specs()}
    spec = specs["zoho-channels/hourly"]
    assert spec.entrypoint == CHANNELS_ENTRYPOINT == "flows.channels:zoho_channels"
    assert [(s.cron, s.timezone) for s in spec.schedules] == [("17 * * * *", "UTC")]
    assert spec.parameters == {} and spec.concurrency_limit == 1
    # Hourly is well inside the renewal margin (a day) and the channel's life (6 days).
    settings = WebhookSettings()
    assert 3600 < settings.renew_before_hours * 3600 < settings.channel_days * DAY

    runner = to_runner_deployment(spec)  # what `zxsync serve` serves
    assert runner.name == "hourly" and runner.concurrency_limit == 1
    assert [(s.schedule.cron, s.schedule.timezone) for s in runner.schedules] == [("17 * * * *", "UTC")]

    rendered = {d["name"]: d for d in yaml.safe_load(render_prefect_yaml())["deployments"]}
    committed = {d["name"]: d for d in yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]}
    for document in (rendered, committed):
        entry = document["hourly"]
        assert entry["entrypoint"] == CHANNELS_ENTRYPOINT
        assert entry["schedules"] == [{"cron": "17 * * * *", "timezone": "UTC", "active": True}]
        assert entry["concurrency_limit"] == 1

    # Serving only some orgs (the demo) keeps the renewal, limited to those orgs.
    only = {s.full_name: s for s in registry_specs(only=["demo"])}
    assert only["zoho-channels/hourly"].parameters == {"orgs": ["demo"]}
