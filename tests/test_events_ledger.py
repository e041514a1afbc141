"""The ledger's event queue and webhook secrets (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from ledger_support import db_url, ledger_env, pg_session_db  # noqa: F401

from ledger import Ledger
from ledger.errors import LedgerKeyError

pytestmark = pytest.mark.usefixtures("ledger_env")


@pytest.fixture()
def store(db_url: str) -> Iterator[Ledger]:  # noqa: F811 - the imported fixture, parametrised per backend
    """An open ledger on SQLite and on PostgreSQL."""
    with Ledger.open(db_url) as opened:
        yield opened


def test_duplicates_coalesce_while_pending_and_come_back_after_a_claim(store: Ledger) -> None:
    ledger = store
    assert ledger.enqueue_events("acme", [("1", "zoho:Invoices"), ("2", "zoho:Invoices"), ("1", "xero:INVOICE")]) == 2
    assert ledger.enqueue_events("acme", [("1", "zoho:Invoices")]) == 0  # a replay
    assert ledger.enqueue_events("other", [("1", "zoho:Invoices")]) == 1
    assert ledger.pending_ids("acme") == ["1", "2"]
    [pending_acme, pending_other] = ledger.pending_events()
    assert (pending_acme.org, pending_acme.count, pending_other.count) == ("acme", 2, 1)

    assert ledger.claim_events("acme", "b1") == [("1", "zoho:Invoices"), ("2", "zoho:Invoices")]
    assert ledger.pending_ids("acme") == []
    # The record changed again while its batch runs: pending again, next to the claimed copy.
    assert ledger.enqueue_events("acme", [("1", "zoho:Invoices")]) == 1
    assert ledger.pending_ids("acme") == ["1"]
    ledger.set_batch_run("acme", "b1", "run-1")
    [batch] = ledger.event_batches("acme")
    assert (batch.batch, batch.flow_run_id, batch.record_ids, batch.attempts) == ("b1", "run-1", ["1", "2"], 0)
    assert batch.sources == ["zoho:Invoices", "zoho:Invoices"]
    assert ledger.finish_batch("acme", "b1") == 2
    assert ledger.event_batches("acme") == []
    assert ledger.pending_ids("acme") == ["1"]


def test_a_failed_batch_goes_back_to_pending_until_its_attempts_run_out(store: Ledger) -> None:
    ledger = store
    ledger.enqueue_events("acme", [("1", "s"), ("2", "s")])
    ledger.claim_events("acme", "b1")
    ledger.enqueue_events("acme", [("2", "s")])  # pending again meanwhile
    released, dropped = ledger.release_batch("acme", "b1", max_attempts=3)
    assert (sorted(released), dropped) == (["1", "2"], [])
    assert sorted(ledger.pending_ids("acme")) == ["1", "2"]
    for n in (2, 3):
        ledger.claim_events("acme", f"b{n}")
        released, dropped = ledger.release_batch("acme", f"b{n}", max_attempts=3)
    assert released == ["2"] and dropped == ["1"]  # id 2's merged copy started counting later
    assert ledger.pending_ids("acme") == ["2"]
    ledger.claim_events("acme", "b4")
    assert ledger.release_batch("acme", "b4", max_attempts=1, count_attempt=False) == (["2"], [])


def test_claim_takes_the_oldest_first_up_to_a_limit(store: Ledger) -> None:
    ledger = store
    ledger.enqueue_events("acme", [(str(i), "s") for i in range(10)])
    assert [i for i, _ in ledger.claim_events("acme", "b1", limit=4)] == ["0", "1", "2", "3"]
    assert len(ledger.pending_ids("acme")) == 6


def test_webhook_secrets_are_encrypted_and_bound_to_their_row(store: Ledger) -> None:
    ledger = store
    ledger.save_webhook_secret("xero-key:app", "xero_key", "K3y-marker-value", meta={"note": "app"})
    ledger.save_webhook_secret("trigger:acme", "trigger", "T0k-marker-value", org="acme")
    secret = ledger.load_webhook_secret("xero-key:app")
    assert secret.secret.get_secret_value() == "K3y-marker-value" and secret.meta == {"note": "app"}
    assert "K3y" not in repr(secret)
    assert [s.name for s in ledger.webhook_secrets(org="acme")] == ["trigger:acme"]
    ledger.update_webhook_meta("xero-key:app", {"note": "renamed"})
    assert ledger.load_webhook_secret("xero-key:app").meta == {"note": "renamed"}
    with ledger.engine.connect() as connection:
        from sqlalchemy import text

        dump = repr(connection.execute(text("SELECT * FROM webhook_secrets")).all())
    assert "marker-value" not in dump and "xero-key:app" in dump
    url = ledger.engine.url.render_as_string(hide_password=False)
    with Ledger.open(url, fernet_key=Fernet.generate_key()) as wrong, pytest.raises(LedgerKeyError):
        wrong.load_webhook_secret("xero-key:app")
    assert ledger.delete_webhook_secret("xero-key:app") is True
    with pytest.raises(KeyError):
        ledger.load_webhook_secret("xero-key:app")
