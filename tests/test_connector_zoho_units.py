"""Zoho connector pieces that need no server: DC table, OAuth helpers, token parsing, COQL quoting,
subform payloads and result pairing."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.errors import BadResponseError, TokenRefreshError
from connectors.zoho import _pair_results, subform_payload, write_credits
from connectors.zoho_auth import (
    DATA_CENTRES,
    accounts_server_for_dc,
    authorize_url,
    parse_auth_redirect,
    parse_token_response,
    token_expiry_seconds,
    validate_accounts_server,
    validate_api_domain,
)
from connectors.zoho_coql import after_cursor, all_of, any_of, cond, coql_credits, literal, select

# --- data centres and OAuth helpers -------------------------------------------------------------------


@pytest.mark.parametrize(("dc", "server"), [
    ("eu", "https://accounts.zoho.eu"), ("com", "https://accounts.zoho.com"), ("us", "https://accounts.zoho.com"),
    ("in", "https://accounts.zoho.in"), ("com.au", "https://accounts.zoho.com.au"),
    ("au", "https://accounts.zoho.com.au"), ("jp", "https://accounts.zoho.jp"),
    ("ca", "https://accounts.zohocloud.ca"), ("zohocloud.ca", "https://accounts.zohocloud.ca"),
    ("sa", "https://accounts.zoho.sa"), ("com.cn", "https://accounts.zoho.com.cn"), ("CN", "https://accounts.zoho.com.cn"),
])
def test_dc_flag_maps_to_the_accounts_server(dc: str, server: str) -> None:
    assert accounts_server_for_dc(dc) == server


def test_dc_table_covers_the_eight_data_centres() -> None:
    assert set(DATA_CENTRES) == {"com", "eu", "in", "com.au", "jp", "zohocloud.ca", "sa", "com.cn"}
    with pytest.raises(ValueError, match="unknown Zoho data centre"):
        accounts_server_for_dc("ca.zoho")


def test_accounts_server_from_a_redirect_is_checked() -> None:
    assert validate_accounts_server("https://accounts.zoho.eu/") == "https://accounts.zoho.eu"
    for forged in ("https://accounts.zoho.eu.evil.com", "http://accounts.zoho.com", "https://evil.example",
                   "https://accounts.zoho.ca"):
        with pytest.raises(ValueError):
            validate_accounts_server(forged)
    # A development sandbox is trusted only when it is the configured override.
    assert validate_accounts_server("http://127.0.0.1:9/", also_allow=["http://127.0.0.1:9"]) == "http://127.0.0.1:9"
    assert validate_api_domain("https://www.zohoapis.com.au") == "https://www.zohoapis.com.au"
    assert validate_api_domain("https://sandbox.zohoapis.eu") == "https://sandbox.zohoapis.eu"
    with pytest.raises(ValueError):
        validate_api_domain("https://www.zohoapis.evil.com")


def test_authorize_url_asks_for_offline_access_and_consent() -> None:
    url = authorize_url("https://accounts.zoho.eu", client_id="1000.ABC", redirect_uri="http://127.0.0.1:5000/cb",
                        state="s1", scopes=["ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"])
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.zoho.eu/oauth/v2/auth"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q == {"response_type": "code", "client_id": "1000.ABC", "scope": "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL",
                 "redirect_uri": "http://127.0.0.1:5000/cb", "access_type": "offline", "prompt": "consent",
                 "state": "s1"}


def test_auth_redirect_is_parsed_and_validated() -> None:
    ok = parse_auth_redirect("http://127.0.0.1/cb?code=1000.c0de&location=eu&accounts-server=https%3A%2F%2Faccounts.zoho.eu"
                             "&state=s1", expected_state="s1")
    assert (ok.code, ok.location, ok.accounts_server) == ("1000.c0de", "eu", "https://accounts.zoho.eu")
    only_location = parse_auth_redirect("http://x/cb?code=c&location=au")
    assert only_location.accounts_server == "https://accounts.zoho.com.au"
    with pytest.raises(ValueError, match="state"):
        parse_auth_redirect("http://x/cb?code=c&location=eu&state=other", expected_state="s1")
    with pytest.raises(ValueError, match="not a Zoho accounts server"):
        parse_auth_redirect("http://x/cb?code=c&accounts-server=https%3A%2F%2Fevil.example")
    with pytest.raises(ValueError, match="refused"):
        parse_auth_redirect("http://x/cb?error=access_denied")


# --- token responses ---------------------------------------------------------------------------------


def test_token_lifetime_handles_legacy_milliseconds() -> None:
    assert token_expiry_seconds({"expires_in": 3600}) == 3600
    assert token_expiry_seconds({"expires_in": 3600000, "expires_in_sec": 3600}) == 3600
    assert token_expiry_seconds({"expires_in": 3600000}) == 3600


def test_http_200_token_errors_are_typed() -> None:
    grant = parse_token_response(200, {"access_token": "1000.a", "expires_in": 3600, "api_domain": "https://www.zohoapis.eu",
                                       "token_type": "Bearer", "scope": "ZohoCRM.modules.ALL ZohoCRM.settings.ALL"})
    assert grant.access_token.get_secret_value() == "1000.a" and grant.scopes == ["ZohoCRM.modules.ALL",
                                                                                   "ZohoCRM.settings.ALL"]
    with pytest.raises(TokenRefreshError) as dead:
        parse_token_response(200, {"error": "invalid_code"})
    assert dead.value.permanent and "reconnect" in dead.value.message
    with pytest.raises(TokenRefreshError) as busy:
        parse_token_response(200, {"error": "Access Denied",
                                   "error_description": "You have made too many requests continuously. Please try again after some time."})
    assert not busy.value.permanent and "10 minutes" in busy.value.message


# --- COQL ----------------------------------------------------------------------------------------------


def _lex(text: str) -> list[tuple[str, str]]:
    """A reference COQL lexer (Kaizen #171): ('str', value) for quoted literals, ('bare', text) for
    the rest. Either quote character opens a literal, a doubled quote inside it is one quote, and a
    backslash is an ordinary character. Raises ValueError for an unterminated literal."""
    tokens: list[tuple[str, str]] = []
    i, bare = 0, ""
    while i < len(text):
        ch = text[i]
        if ch not in "'\"":
            bare += ch
            i += 1
            continue
        if bare:
            tokens.append(("bare", bare))
            bare = ""
        quote, i, value = ch, i + 1, ""
        while True:
            if i >= len(text):
                raise ValueError("unterminated literal")
            c = text[i]
            if c == quote and text[i + 1:i + 2] == quote:
                value += quote
                i += 2
            elif c == quote:
                i += 1
                break
            else:
                value += c
                i += 1
        tokens.append(("str", value))
    if bare:
        tokens.append(("bare", bare))
    return tokens


@given(st.text(st.sampled_from("a '\"\\%_")) | st.text())
@example("O\\'Brien \"x\"\\")
def test_every_string_reads_back_exactly_and_cannot_leave_its_literal(value: str) -> None:
    from sandbox.zoho.coql import tokenize  # the sandbox's parser, written from Zoho's docs

    text = cond("Last_Name", "=", value) + " and Email is null"
    # Outside the literal only what we wrote ourselves; inside, the value exactly (backslashes too).
    assert _lex(text) == [("bare", "Last_Name = "), ("str", value), ("bare", " and Email is null")]
    assert [t.value for t in tokenize(text) if t.kind == "string"] == [value]


def test_obrien_and_injection_attempts_are_quoted() -> None:
    assert cond("Last_Name", "=", "O'Brien") == 'Last_Name = "O\'Brien"'
    assert cond("Last_Name", "=", "Plain") == "Last_Name = 'Plain'"
    assert cond("Last_Name", "=", "x' or id is not null or Last_Name = '") == \
        'Last_Name = "x\' or id is not null or Last_Name = \'"'
    assert cond("Last_Name", "=", "both ' and \"") == "Last_Name = 'both '' and \"'"
    # A backslash is an ordinary character in COQL: sent once, never doubled.
    assert cond("Account_Name", "=", "ends with \\") == "Account_Name = 'ends with \\'"
    assert cond("Last_Name", "=", "O\\'Brien \"x\"") == "Last_Name = 'O\\''Brien \"x\"'"
    with pytest.raises(ValueError):
        cond("Last_Name = 'x' or 1", "=", "y")
    with pytest.raises(ValueError):
        cond("id", "=", "1 or 1=1")
    with pytest.raises(ValueError):
        cond("Last_Name", "; drop", "x")


def test_literals_and_conditions() -> None:
    aest = timezone(timedelta(hours=10))
    assert literal(datetime(2026, 1, 1, 10, 0, 0, 123, tzinfo=aest)) == "'2026-01-01T10:00:00+10:00'"
    with pytest.raises(ValueError):
        literal(datetime(2026, 1, 1))
    assert literal(date(2026, 2, 3)) == "'2026-02-03'"
    assert literal(Decimal("12.50")) == "12.50" and literal(True) == "true" and literal(3) == "3"
    with pytest.raises(ValueError):
        literal(float("nan"))
    assert cond("Status", "in", ["Draft", "O'Neil"]) == "Status in ('Draft', \"O'Neil\")"
    assert cond("Xero_Invoice_ID", "is null") == "Xero_Invoice_ID is null"
    assert all_of(cond("a", "=", 1), cond("b", "=", 2), cond("c", "=", 3)) == "(((a = 1) and (b = 2)) and (c = 3))"
    assert any_of(cond("a", "=", 1)) == "a = 1"
    with pytest.raises(TypeError):
        all_of("a = 1 or 1 = 1", cond("b", "=", 2))  # type: ignore[arg-type]


def test_select_and_keyset() -> None:
    q = select("Invoices", ["Subject", "Subject", "Modified_Time"], cond("Status", "=", "Approved"),
               order_by=[("Modified_Time", "asc"), ("id", "asc")], limit=2000, offset=4000)
    assert q == ("select Subject, Modified_Time from Invoices where Status = 'Approved' "
                 "order by Modified_Time asc, id asc limit 4000, 2000")
    assert "where id is not null" in select("Invoices", ["Subject"])
    with pytest.raises(ValueError):
        select("Invoices", ["Subject"], limit=2001)
    with pytest.raises(ValueError):
        select("Invoices", ["Subject"], offset=99_000, limit=2000)
    assert after_cursor("2026-01-01T10:00:00+10:00", "42") == (
        "((Modified_Time > '2026-01-01T10:00:00+10:00') or "
        "((Modified_Time = '2026-01-01T10:00:00+10:00') and (id > 42)))")
    assert [coql_credits(n) for n in (1, 200, 201, 1000, 1001, 2000)] == [1, 1, 2, 2, 3, 3]
    assert [write_credits(n) for n in (1, 10, 11, 100)] == [1, 1, 2, 10]


# --- subforms --------------------------------------------------------------------------------------------


def test_subform_payload_keeps_updates_deletes_and_appends() -> None:
    current = [{"id": "1", "Product_Name": {"id": "p1"}, "Quantity": 1},
               {"id": "2", "Product_Name": {"id": "p2"}, "Quantity": 2},
               {"id": "3", "Product_Name": {"id": "p3"}, "Quantity": 3}]
    intended = [{"id": "2", "Product_Name": {"id": "p2"}, "Quantity": 5}, {"Product_Name": {"id": "p9"}, "Quantity": 1}]
    assert subform_payload(current, intended) == [
        {"id": "2", "Product_Name": {"id": "p2"}, "Quantity": 5},
        {"Product_Name": {"id": "p9"}, "Quantity": 1},
        {"id": "1", "_delete": None}, {"id": "3", "_delete": None}]


def test_subform_payload_reuses_ids_by_key_and_never_duplicates() -> None:
    current = [{"id": "1", "Product_Name": {"id": "p1"}}, {"id": "2", "Product_Name": {"id": "p1"}}]
    intended = [{"Product_Name": {"id": "p1"}, "Quantity": 4}]

    def key(row):
        return row["Product_Name"]["id"]

    assert subform_payload(current, intended, match_key=key) == [
        {"Product_Name": {"id": "p1"}, "Quantity": 4, "id": "1"}, {"id": "2", "_delete": None}]
    # Without ids and without a key, every current row is deleted and the lines appended once.
    payload = subform_payload(current, intended)
    assert [r.get("id") for r in payload] == [None, "1", "2"] and payload[1]["_delete"] is None
    with pytest.raises(ValueError, match="not one of"):
        subform_payload(current, [{"id": "77"}])
    with pytest.raises(ValueError, match="twice"):
        subform_payload(current, [{"id": "1"}, {"id": "1"}])
    assert subform_payload([], []) == []


# --- result pairing ----------------------------------------------------------------------------------------


def _ok(rid: str, action: str | None = None) -> dict:
    item = {"code": "SUCCESS", "status": "success", "message": "record added", "details": {"id": rid}}
    if action:
        item["action"] = action
    return item


def test_results_pair_with_keys_and_cross_check() -> None:
    err = {"code": "INVALID_DATA", "status": "error", "message": "invalid",
           "details": {"api_name": "Email", "json_path": "$.data[0].Email"}}
    results = _pair_results([err, _ok("9", "insert")], ["k0", "k1"], [None, None])
    assert [(r.key, r.ok, r.id, r.api_name) for r in results] == [("k0", False, None, "Email"), ("k1", True, "9", None)]
    # An update whose results came back swapped is paired by id.
    swapped = _pair_results([_ok("b"), _ok("a")], ["ka", "kb"], ["a", "b"])
    assert [(r.key, r.id) for r in swapped] == [("ka", "a"), ("kb", "b")]
    dup = {"code": "DUPLICATE_DATA", "status": "error", "message": "duplicate data",
           "details": {"api_name": "Xero_Invoice_ID", "json_path": "$.data[1].Xero_Invoice_ID",
                       "duplicate_record": {"id": "555", "module": {"api_name": "Invoices"}}}}
    assert _pair_results([_ok("1"), dup], ["x", "y"], [None, None])[1].existing_id == "555"
    with pytest.raises(BadResponseError):
        _pair_results([err, err], ["a", "b"], [None, None])


def test_budget_reserve_is_checked_before_sending() -> None:
    from connectors.errors import BudgetExhausted
    from connectors.zoho import CreditBudget

    budget = CreditBudget()
    budget.ensure(10, 100, "acme", "x")  # Zoho has not said anything yet: go
    budget.observe_header("150")
    budget.charge(30)
    assert budget.estimated_remaining == 120
    budget.ensure(20, 100, "acme", "x")
    with pytest.raises(BudgetExhausted, match=re.escape("about 120 Zoho CRM API credits")):
        budget.ensure(21, 100, "acme", "an insert of 100 Invoices")
