"""Ledger: migrations, encrypted connections, links, watermarks, journal, intents, runs — on SQLite and PostgreSQL."""

# The fixtures are imported from ledger_support and then named as test parameters: that is how
# pytest shares them without a conftest, and it looks like a redefinition to the linter.
# ruff: noqa: F811

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from ledger_support import BACKENDS, db_url, fresh_db_url, ledger, ledger_env, pg_session_db, run_workers  # noqa: F401
from pydantic import SecretStr
from sqlalchemy import Engine, event, inspect, select, text, update

from connectors.credentials import Connection
from ledger import (
    Entity,
    IntentState,
    JournalEntry,
    Ledger,
    LedgerKeyError,
    LinkConflict,
    LinkState,
    StaleConnection,
)
from ledger.migrate import current_revision, head_revision
from ledger.models import Base, ConnectionRecord, IntentRecord
from zxsync.settings import get_settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REFRESH_SECRET = "rt-4f1c9a7e-very-secret-refresh-token"
CLIENT_SECRET = "cs-0b2d-very-secret-client-secret"
CLIENT_ID = "client-id-ABCDEF0123456789"


def xero_connection(org: str = "acme", **changes: object) -> Connection:
    fields: dict[str, object] = {
        "org": org,
        "system": "xero",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_SECRET,
        "previous_refresh_token": "rt-old-previous",
        "refresh_rotated_at": T0,
        "access_token": "at-short-lived",
        "access_expires_at": T0 + timedelta(minutes=30),
        "scopes": ["offline_access", "accounting.invoices"],
        "tenant_id": "tenant-123",
        "urls": {"api": "http://127.0.0.1:8701"},
    }
    fields.update(changes)
    return Connection.model_validate(fields)


class StatementCounter:
    """Counts the SQL statements an engine sends (executemany counts once)."""

    def __init__(self, engine: Engine, containing: str) -> None:
        self.statements: list[tuple[str, bool]] = []
        self.containing = containing.lower()
        event.listen(engine, "before_cursor_execute", self._on_execute)
        self.engine = engine

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.containing in statement.lower():
            self.statements.append((statement, executemany))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


# --- migrations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fresh_db_url", BACKENDS, indirect=True)
def test_migrates_from_empty_then_reopens_without_ddl(fresh_db_url: str, ledger_env: dict[str, str]) -> None:
    with Ledger.open(fresh_db_url) as opened:
        assert current_revision(opened.engine) == head_revision()
        tables = set(inspect(opened.engine).get_table_names())
        assert {"connections", "locks", "links", "watermarks", "journal", "intents", "runs"} <= tables
        with opened.engine.connect() as connection:
            # The migration creates exactly what the models describe (no drift between the two).
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []

    ddl: list[str] = []

    def spy(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
            ddl.append(statement)

    event.listen(Engine, "before_cursor_execute", spy)
    try:
        with Ledger.open(fresh_db_url) as reopened:
            reopened.set_watermark("acme", "zoho:Invoices", T0)
            assert reopened.get_watermark("acme", "zoho:Invoices") == T0
    finally:
        event.remove(Engine, "before_cursor_execute", spy)
    assert ddl == []


@pytest.mark.parametrize("fresh_db_url", BACKENDS, indirect=True)
def test_processes_opening_a_fresh_database_at_once_both_succeed(
    fresh_db_url: str, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    results, _ = run_workers("open", fresh_db_url, tmp_path, ledger_env, count=3)
    assert results == [{"opened": True}] * 3
    with Ledger.open(fresh_db_url) as opened:
        assert current_revision(opened.engine) == head_revision()
        assert set(opened.watermarks("acme")) == {"stream-0", "stream-1", "stream-2"}


def test_default_url_is_a_sqlite_file_under_zx_home(ledger_env: dict[str, str]) -> None:
    with Ledger.open() as opened:
        assert opened.dialect == "sqlite"
        assert opened.engine.url.database == str((Path(ledger_env["ZX_HOME"]) / "ledger.db").resolve())
    assert (Path(ledger_env["ZX_HOME"]) / "ledger.db").exists()


def test_url_without_driver_uses_psycopg3() -> None:
    from ledger.engine import normalise_url

    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="unsupported"):
        normalise_url("mysql://u@h/db")


# --- connections --------------------------------------------------------------------------------
def test_connection_round_trip_with_versions(ledger: Ledger) -> None:
    original = xero_connection()
    assert ledger.save_connection(original) == 1
    loaded = ledger.load_connection("acme", "xero")
    assert loaded.model_dump() == original.model_dump()
    assert loaded.refresh_token is not None and loaded.refresh_token.get_secret_value() == REFRESH_SECRET
    assert loaded.access_expires_at == T0 + timedelta(minutes=30)

    rotated = loaded.model_copy(update={"refresh_token": SecretStr("rt-next")})
    assert ledger.save_connection(rotated) == 2
    assert ledger.load_connection("acme", "xero").refresh_token.get_secret_value() == "rt-next"  # type: ignore[union-attr]
    assert ledger.connection_version("acme", "xero") == 2

    zoho = Connection.model_validate(
        {
            "org": "acme",
            "system": "zoho",
            "client_id": "z",
            "api_domain": "http://127.0.0.1:8702",
            "recent_mints": [T0, T0 + timedelta(minutes=1)],
        }
    )
    ledger.save_connection(zoho)
    assert ledger.load_connection("acme", "zoho").model_dump() == zoho.model_dump()
    ledger.save_connection(xero_connection(org="other"))
    assert [(c.org, c.system) for c in ledger.list_connections("acme")] == [
        ("acme", "xero"),
        ("acme", "zoho"),
    ]
    assert len(ledger.list_connections()) == 3

    assert ledger.delete_connection("acme", "zoho") is True
    assert ledger.delete_connection("acme", "zoho") is False
    with pytest.raises(KeyError):
        ledger.load_connection("acme", "zoho")


def test_compare_and_set_save_refuses_a_stale_version(ledger: Ledger) -> None:
    assert ledger.save_connection(xero_connection(), expected_version=0) == 1
    with pytest.raises(StaleConnection):
        ledger.save_connection(xero_connection(), expected_version=0)
    assert ledger.save_connection(xero_connection(refresh_token="rt-2"), expected_version=1) == 2
    with pytest.raises(StaleConnection):
        ledger.save_connection(xero_connection(refresh_token="rt-lost-update"), expected_version=1)
    assert ledger.load_connection("acme", "xero").refresh_token.get_secret_value() == "rt-2"  # type: ignore[union-attr]


def test_secrets_never_stored_in_clear(ledger: Ledger, db_url: str) -> None:
    ledger.save_connection(xero_connection(org="acme-clear-marker"))
    ledger.save_connection(xero_connection(org="acme-clear-marker", refresh_token=REFRESH_SECRET + "-2"))
    needles = [REFRESH_SECRET, CLIENT_SECRET, CLIENT_ID, "at-short-lived", "tenant-123"]

    if ledger.dialect == "sqlite":
        ledger.close()  # checkpoint the WAL; still scan every file of the database
        database = Path(ledger.engine.url.database or "")
        blobs = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
        assert b"acme-clear-marker" in blobs  # the scan does see the stored rows
        for needle in needles:
            assert needle.encode() not in blobs
    else:
        with ledger.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT c::text, encode(ciphertext, 'escape') FROM connections c")
            ).all()
        dump = " ".join(str(value) for row in rows for value in row)
        assert "acme-clear-marker" in dump
        for needle in needles:
            assert needle not in dump


def test_wrong_key_and_swapped_rows_are_refused(ledger: Ledger, db_url: str) -> None:
    ledger.save_connection(xero_connection(org="acme"))
    ledger.save_connection(xero_connection(org="other"))
    with (
        Ledger.open(db_url, fernet_key=Fernet.generate_key()) as wrong_key,
        pytest.raises(LedgerKeyError, match="secret key"),
    ):
        wrong_key.load_connection("acme", "xero")

    table = ConnectionRecord.__table__
    with ledger.engine.begin() as connection:
        stolen = connection.execute(select(table.c.ciphertext).where(table.c.org == "other")).scalar_one()
        connection.execute(update(table).where(table.c.org == "acme").values(ciphertext=stolen))
    with pytest.raises(LedgerKeyError, match="another connection"):
        ledger.load_connection("acme", "xero")


def test_key_comes_from_settings_lazily(
    db_url: str, ledger_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = Path(ledger_env["ZX_SECRET_KEY_FILE"])
    monkeypatch.delenv("ZX_SECRET_KEY")
    get_settings.cache_clear()
    with Ledger.open(db_url) as opened:
        opened.set_watermark("acme", "xero:Invoices", T0)
        assert not key_file.exists()  # no connection touched: no key generated
        opened.save_connection(xero_connection())
        assert key_file.exists()
    with Ledger.open(db_url) as reopened:
        assert reopened.load_connection("acme", "xero").client_id == CLIENT_ID


# --- links --------------------------------------------------------------------------------------
def test_links_upsert_partial_update_and_lookups(ledger: Ledger) -> None:
    written = ledger.upsert_links(
        "acme",
        "invoice",
        [
            {
                "zoho_id": "z1",
                "xero_id": "x1",
                "zoho_number": "SO-1",
                "content_hash": "h1",
                "zoho_modified_at": datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=10))),
            },
            {"zoho_id": "z2", "state": "deferred"},
        ],
    )
    assert written == 2
    found = ledger.links_by_zoho("acme", "invoice", ["z1", "z2", "missing"])
    assert set(found) == {"z1", "z2"}
    assert found["z1"].state == LinkState.SYNCED
    assert found["z1"].zoho_modified_at == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert found["z1"].zoho_modified_at.tzinfo is UTC  # type: ignore[union-attr]
    assert found["z2"].xero_id is None and found["z2"].state == "deferred"

    # Only the fields given are updated; the rest stays.
    ledger.upsert_links(
        "acme", "invoice", [{"zoho_id": "z1", "xero_number": "INV-0001", "extra": {"lines": {"l1": "L1"}}}]
    )
    z1 = ledger.links_by_zoho("acme", "invoice", ["z1"])["z1"]
    assert (z1.xero_id, z1.zoho_number, z1.xero_number, z1.content_hash) == ("x1", "SO-1", "INV-0001", "h1")
    assert z1.extra == {"lines": {"l1": "L1"}}
    assert z1.updated_at >= z1.created_at

    assert set(ledger.links_by_xero("acme", "invoice", ["x1", "nope"])) == {"x1"}
    assert set(ledger.links_by_xero("acme", "invoice")) == {"x1"}  # unlinked z2 has no Xero id
    assert set(ledger.links_by_zoho("acme", "invoice")) == {"z1", "z2"}
    assert ledger.links_by_zoho("acme", "contact") == {}
    assert ledger.links_by_zoho("other-org", "invoice") == {}

    frame = ledger.links_frame("acme", "invoice")
    assert list(frame["zoho_id"]) == ["z1", "z2"]
    assert str(frame["zoho_modified_at"].dtype) == "datetime64[us, UTC]"

    assert ledger.delete_link("acme", "invoice", "z2") is True
    assert ledger.delete_link("acme", "invoice", "z2") is False
    assert set(ledger.links_by_zoho("acme", "invoice")) == {"z1"}


def test_links_refuse_bad_input_and_conflicts(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="unknown entity"):
        ledger.upsert_links("acme", "invoices", [{"zoho_id": "z1"}])
    with pytest.raises(ValueError, match="unknown link fields"):
        ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "xero": "x"}])
    with pytest.raises(ValueError):
        ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "state": "synched"}])
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "xero_updated_at": datetime(2026, 1, 1)}])

    ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "xero_id": "x1"}])
    with pytest.raises(LinkConflict, match="x1"):
        ledger.upsert_links("acme", "invoice", [{"zoho_id": "z2", "xero_id": "x1"}])
    with pytest.raises(LinkConflict):
        ledger.upsert_links(
            "acme", "invoice", [{"zoho_id": "z3", "xero_id": "x3"}, {"zoho_id": "z4", "xero_id": "x3"}]
        )
    assert set(ledger.links_by_zoho("acme", "invoice")) == {"z1"}
    # The same Xero id under another entity or org is no conflict.
    ledger.upsert_links("acme", "contact", [{"zoho_id": "z2", "xero_id": "x1"}])
    ledger.upsert_links("other", "invoice", [{"zoho_id": "z2", "xero_id": "x1"}])


def test_ten_thousand_links_in_a_few_statements(ledger: Ledger) -> None:
    rows = [
        {
            "zoho_id": f"z{i}",
            "xero_id": f"x{i}",
            "zoho_number": f"SO-{i}",
            "content_hash": f"h{i}",
            "extra": {"lines": {f"l{i}": f"L{i}"}},
        }
        for i in range(10_000)
    ]
    counter = StatementCounter(ledger.engine, "links")
    try:
        assert ledger.upsert_links("acme", "invoice", rows) == 10_000
        inserts = list(counter.statements)
        counter.statements.clear()
        found = ledger.links_by_zoho("acme", "invoice", [f"z{i}" for i in range(10_000)])
        lookups = list(counter.statements)
        counter.statements.clear()
        # Second pass updates every row (a re-sync), still in bulk.
        ledger.upsert_links(
            "acme", "invoice", [{"zoho_id": r["zoho_id"], "content_hash": "v2"} for r in rows]
        )
        updates = list(counter.statements)
    finally:
        counter.close()
    assert len(found) == 10_000 and found["z9999"].xero_id == "x9999"
    assert 1 <= len(inserts) <= 3 and all(many for _, many in inserts)
    assert 1 <= len(lookups) <= 3
    assert 1 <= len(updates) <= 3
    assert {link.content_hash for link in ledger.links_by_zoho("acme", "invoice").values()} == {"v2"}


# --- watermarks ---------------------------------------------------------------------------------
def test_watermarks(ledger: Ledger) -> None:
    assert ledger.get_watermark("acme", "zoho:Invoices") is None
    sydney = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=11)))
    ledger.set_watermark("acme", "zoho:Invoices", sydney)
    stored = ledger.get_watermark("acme", "zoho:Invoices")
    assert stored == sydney and stored.tzinfo is UTC  # type: ignore[union-attr]
    ledger.set_watermark("acme", "zoho:Invoices", T0)  # backwards is allowed (forces a re-read)
    ledger.set_watermark("acme", "xero:Payments", T0 + timedelta(seconds=1))
    assert ledger.watermarks("acme") == {"zoho:Invoices": T0, "xero:Payments": T0 + timedelta(seconds=1)}
    assert ledger.get_watermark("other", "zoho:Invoices") is None
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.set_watermark("acme", "zoho:Invoices", datetime(2026, 1, 1))


# --- journal ------------------------------------------------------------------------------------
def entry(**fields: object) -> JournalEntry:
    base: dict[str, object] = {
        "org": "acme",
        "entity": "invoice",
        "zoho_id": "z1",
        "action": "update",
        "outcome": "ok",
    }
    base.update(fields)
    return JournalEntry.model_validate(base)


def test_journal_record_and_query(ledger: Ledger) -> None:
    entries = [
        entry(action="create", xero_id="x1", run_id="r1", after={"Total": 10}, time=T0),
        entry(
            action="reject",
            outcome="rejected",
            run_id="r1",
            rule="tax.unknown",
            field="Tax_Code",
            message="Tax code GST9 does not exist in Xero",
            hint="Map GST9 in orgs/acme.yaml",
            time=T0 + timedelta(hours=1),
        ),
        entry(
            zoho_id="z2",
            entity="contact",
            action="skip",
            outcome="unchanged",
            run_id="r2",
            time=T0 + timedelta(hours=2),
        ),
        entry(org="other", time=T0),
    ]
    assert ledger.record(entries) == 4
    everything = ledger.journal_for("acme")
    assert [e.action for e in everything] == ["create", "reject", "skip"]
    assert everything[0].time == T0 and everything[0].time.tzinfo is UTC
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    rejected = ledger.journal_for("acme", zoho_id="z1", entity="invoice", since=T0 + timedelta(minutes=1))
    assert len(rejected) == 1 and rejected[0].message and rejected[0].hint and rejected[0].field == "Tax_Code"
    assert [e.zoho_id for e in ledger.journal_for("acme", run_id="r2")] == ["z2"]
    assert len(ledger.journal_for("acme", limit=2)) == 2
    with pytest.raises(ValueError):
        entry(action="Create!")
    with pytest.raises(ValueError):
        entry(entity="invoices")
    with pytest.raises(ValueError):
        entry(time=datetime(2026, 1, 1))


def test_snapshot_at_returns_the_state_that_stood_then(ledger: Ledger) -> None:
    ledger.record(
        [
            entry(action="create", after={"Total": 10}, time=T0),
            entry(action="update", after={"Total": 12}, before={"Total": 10}, time=T0 + timedelta(days=1)),
            # A rejected attempt never became the record's state.
            entry(action="update", outcome="rejected", after={"Total": 999}, time=T0 + timedelta(days=2)),
            entry(action="lookup-heal", after=None, time=T0 + timedelta(days=3)),
            entry(zoho_id="z2", action="create", after={"Total": 1}, time=T0 + timedelta(days=1)),
        ]
    )
    at = ledger.snapshot_at
    assert at("acme", "invoice", "z1", T0 - timedelta(seconds=1)) is None
    assert at("acme", "invoice", "z1", T0) == {"Total": 10}
    assert at("acme", "invoice", "z1", T0 + timedelta(hours=23)) == {"Total": 10}
    assert at("acme", "invoice", "z1", T0 + timedelta(days=1)) == {"Total": 12}
    assert at("acme", "invoice", "z1", T0 + timedelta(days=5)) == {"Total": 12}
    assert at("acme", "contact", "z1", T0 + timedelta(days=5)) is None
    assert at("acme", "invoice", "z2", T0 + timedelta(days=5)) == {"Total": 1}


def test_purge_removes_old_journal_and_settled_intents_only(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    ledger.record(
        [
            entry(time=now - timedelta(days=40)),
            entry(time=now - timedelta(days=31)),
            entry(time=now - timedelta(days=1)),
        ]
    )
    ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "xero_id": "x1"}])
    ledger.set_watermark("acme", "zoho:Invoices", now - timedelta(days=90))
    ledger.save_connection(xero_connection())
    old_settled = ledger.open_intent(
        "acme", "invoice", batch_key="b1", idempotency_key="k1", natural_keys=[], payload_digest="d"
    )
    old_pending = ledger.open_intent(
        "acme", "invoice", batch_key="b2", idempotency_key="k2", natural_keys=[], payload_digest="d"
    )
    recent_settled = ledger.open_intent(
        "acme", "invoice", batch_key="b3", idempotency_key="k3", natural_keys=[], payload_digest="d"
    )
    ledger.settle_intent(old_settled)
    ledger.settle_intent(recent_settled)
    intents = IntentRecord.__table__
    with ledger.engine.begin() as connection:
        connection.execute(
            update(intents).where(intents.c.id == old_settled).values(settled_at=now - timedelta(days=60))
        )
        connection.execute(
            update(intents).where(intents.c.id == old_pending).values(created_at=now - timedelta(days=60))
        )

    assert ledger.purge() == 3  # default retention 30 days: two journal entries, one settled intent
    assert len(ledger.journal_for("acme")) == 1
    assert set(ledger.links_by_zoho("acme", "invoice")) == {"z1"}
    assert ledger.get_watermark("acme", "zoho:Invoices") is not None
    assert ledger.load_connection("acme", "xero").client_id == CLIENT_ID
    assert [i.id for i in ledger.pending_intents("acme")] == [old_pending]
    assert ledger.get_intent(recent_settled).state == IntentState.SETTLED
    assert ledger.purge(older_than_days=0) == 2
    assert ledger.journal_for("acme") == []
    with pytest.raises(ValueError):
        ledger.purge(older_than_days=-1)


# --- intents ------------------------------------------------------------------------------------
def test_intents_lifecycle(ledger: Ledger) -> None:
    keys = [{"zoho_id": "z1", "InvoiceNumber": "INV-1"}, {"zoho_id": "z2", "InvoiceNumber": "INV-2"}]
    assert ledger.next_generation("acme", "invoice", "batch-1") == 1
    first = ledger.open_intent(
        "acme",
        "invoice",
        batch_key="batch-1",
        idempotency_key="idem-1",
        natural_keys=keys,
        payload_digest="sha256:abc",
        run_id="run-1",
    )
    # A retried task opening the same key gets the same intent back.
    assert (
        ledger.open_intent(
            "acme",
            "invoice",
            batch_key="batch-1",
            idempotency_key="idem-1",
            natural_keys=keys,
            payload_digest="sha256:abc",
        )
        == first
    )
    pending = ledger.pending_intents("acme", "invoice")
    assert [(i.id, i.generation, i.natural_keys, i.run_id) for i in pending] == [(first, 1, keys, "run-1")]
    assert pending[0].created_at.tzinfo is UTC and pending[0].settled_at is None

    ledger.settle_intent(first, state="abandoned", result={"found": []})
    assert ledger.next_generation("acme", "invoice", "batch-1") == 2
    second = ledger.open_intent(
        "acme",
        "invoice",
        batch_key="batch-1",
        idempotency_key="idem-1-g2",
        natural_keys=keys,
        payload_digest="sha256:abc",
    )
    assert ledger.get_intent(second).generation == 2
    ledger.open_intent(
        "acme", "contact", batch_key="c", idempotency_key="idem-c", natural_keys=[], payload_digest="d"
    )
    assert len(ledger.pending_intents("acme")) == 2
    assert [i.id for i in ledger.pending_intents("acme", "invoice")] == [second]

    ledger.settle_intent(second, result={"INV-1": "x1", "INV-2": "x2"})
    settled = ledger.get_intent(second)
    assert settled.state == IntentState.SETTLED and settled.result == {"INV-1": "x1", "INV-2": "x2"}
    assert settled.settled_at is not None
    with pytest.raises(KeyError):
        ledger.settle_intent(10_000)
    with pytest.raises(ValueError):
        ledger.settle_intent(second, state="pending")


# --- runs ---------------------------------------------------------------------------------------
def test_runs_and_last_successful(ledger: Ledger) -> None:
    assert ledger.last_successful_run("acme") is None
    r1 = ledger.start_run("acme", "flow-run-1", window="zoho since 2026-01-01", started_at=T0)
    assert ledger.start_run("acme", "flow-run-1") == r1  # a retried flow run keeps its record
    ledger.finish_run(r1, "completed", counts={"invoice": {"created": 3}})
    r2 = ledger.start_run("acme", started_at=T0 + timedelta(hours=12))
    ledger.finish_run(r2, "failed")
    ledger.start_run("acme", "still-running", started_at=T0 + timedelta(hours=13))
    other = ledger.start_run("other", started_at=T0 + timedelta(days=1))
    ledger.finish_run(other)

    last = ledger.last_successful_run("acme")
    assert last is not None and last.run_id == "flow-run-1" and last.started_at == T0
    assert last.counts == {"invoice": {"created": 3}} and last.window == "zoho since 2026-01-01"
    assert last.finished_at is not None and last.finished_at.tzinfo is UTC
    assert ledger.get_run(r2).state == "failed"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        ledger.start_run("other", "flow-run-1")
    with pytest.raises(ValueError):
        ledger.finish_run(r1, "running")
    with pytest.raises(KeyError):
        ledger.finish_run("nope")


# --- atomic units -------------------------------------------------------------------------------
def test_atomic_commits_together_or_not_at_all(ledger: Ledger) -> None:
    intent = ledger.open_intent(
        "acme", "invoice", batch_key="b", idempotency_key="k", natural_keys=[], payload_digest="d"
    )
    with pytest.raises(RuntimeError), ledger.atomic():
        ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "xero_id": "x1"}])
        ledger.record([entry(action="create")])
        ledger.settle_intent(intent)
        assert "z1" in ledger.links_by_zoho("acme", "invoice")  # reads see the unit's own writes
        raise RuntimeError("crash before commit")
    assert ledger.links_by_zoho("acme", "invoice") == {}
    assert ledger.journal_for("acme") == []
    assert [i.id for i in ledger.pending_intents("acme")] == [intent]

    with ledger.atomic():
        ledger.upsert_links("acme", "invoice", [{"zoho_id": "z1", "xero_id": "x1"}])
        with ledger.atomic():  # nesting joins the outer unit
            ledger.record([entry(action="create")])
        ledger.settle_intent(intent)
    assert set(ledger.links_by_zoho("acme", "invoice")) == {"z1"}
    assert len(ledger.journal_for("acme")) == 1
    assert ledger.pending_intents("acme") == []


def test_entities_vocabulary() -> None:
    assert {e.value for e in Entity} == {
        "contact",
        "item",
        "invoice",
        "purchase_order",
        "bill",
        "sales_order",
        "quote",
        "credit_note",
        "payment",
    }
