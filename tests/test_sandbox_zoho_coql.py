"""COQL in the Zoho sandbox: operators, lookups, quoting, grouping, limits and errors (notes §3.7,
Kaizen #171, the v8 COQL examples)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sandbox_zoho_support import ZohoCaller, connected


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZohoCaller]:
    yield from connected(tmp_path_factory.mktemp("zoho-coql"))


@pytest.fixture()
def zoho(tmp_path: Path) -> Iterator[ZohoCaller]:
    yield from connected(tmp_path)


def rows(caller: ZohoCaller, query: str) -> list[dict[str, Any]]:
    answer = caller.coql(query)
    if answer.status_code == 204:
        return []
    return caller.ok(answer)["data"]


def error(caller: ZohoCaller, query: str) -> dict[str, Any]:
    answer = caller.coql(query)
    assert answer.status_code == 400, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def invoices(demo: ZohoCaller) -> list[dict[str, Any]]:
    """Every demo invoice through the records API: the oracle the queries are checked against."""
    return demo.ok(demo.get("/Invoices", fields="Subject,Status,Currency,Grand_Total,Invoice_Date,Account_Name,"
                                                "Discount,Modified_Time", sort_by="id", sort_order="asc"))["data"]


def ids(records: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in records}


def test_comparison_operators(demo: ZohoCaller, invoices: list[dict[str, Any]]) -> None:
    cases = {
        "Status = 'Approved'": lambda r: r["Status"] == "Approved",
        "Status != 'Approved'": lambda r: r["Status"] != "Approved",
        "Grand_Total > 1000": lambda r: r["Grand_Total"] > 1000,
        "Grand_Total >= 1000": lambda r: r["Grand_Total"] >= 1000,
        "Grand_Total < 100.5": lambda r: r["Grand_Total"] < 100.5,
        "Grand_Total <= 100.5": lambda r: r["Grand_Total"] <= 100.5,
        "Currency in ('AUD', 'USD')": lambda r: r["Currency"] in ("AUD", "USD"),
        "Currency not in ('NZD')": lambda r: r["Currency"] != "NZD",
        "Subject like '%order 00%'": lambda r: "order 00" in r["Subject"],
        "Subject not like 'Walk-in%'": lambda r: not r["Subject"].startswith("Walk-in"),
        "Grand_Total between 100 and 500": lambda r: 100 <= r["Grand_Total"] <= 500,
        "Grand_Total not between 100 and 500": lambda r: not 100 <= r["Grand_Total"] <= 500,
        "Invoice_Date < '2025-06-01'": lambda r: r["Invoice_Date"] < "2025-06-01",
        "Account_Name is null": lambda r: r["Account_Name"] is None,
        "Discount is not null": lambda r: r["Discount"] is not None,
    }
    for where, predicate in cases.items():
        expected = ids([r for r in invoices if predicate(r)])
        got = ids(rows(demo, f"select id from Invoices where {where} limit 2000"))
        assert got == expected and got, where


def test_and_or_with_parentheses_and_pairwise_grouping(demo: ZohoCaller, invoices: list[dict[str, Any]]) -> None:
    query = ("select id from Invoices where ((Status = 'Approved' and Currency = 'NZD') or Grand_Total > 50000) "
             "limit 2000")
    expected = ids([r for r in invoices if (r["Status"] == "Approved" and r["Currency"] == "NZD")
                    or r["Grand_Total"] > 50000])
    assert ids(rows(demo, query)) == expected
    # Kaizen #171: more than two criteria must be nested in pairs.
    flat = error(demo, "select id from Invoices where Status = 'Approved' and Currency = 'NZD' and id is not null")
    assert flat["code"] == "SYNTAX_ERROR" and set(flat["details"]) == {"line", "column", "near"}
    nested = rows(demo, "select id from Invoices where ((Status = 'Approved' and Currency = 'NZD') and id is not "
                        "null) limit 2000")
    assert ids(nested) == ids([r for r in invoices if r["Status"] == "Approved" and r["Currency"] == "NZD"])


def test_lookups_by_id_and_by_field(demo: ZohoCaller, invoices: list[dict[str, Any]]) -> None:
    account = next(r["Account_Name"] for r in invoices if r["Account_Name"])
    expected = ids([r for r in invoices if r["Account_Name"] and r["Account_Name"]["id"] == account["id"]])
    for where in (f"Account_Name = '{account['id']}'", f"Account_Name.id = {account['id']}",
                  f"Account_Name.Account_Name = '{account['name']}'"):
        assert ids(rows(demo, f"select id from Invoices where {where}")) == expected, where
    got = rows(demo, f"select Subject, Account_Name, Account_Name.Account_Name, Account_Name.Billing_City from "
                     f"Invoices where Account_Name = '{account['id']}' limit 1")[0]
    assert set(got) == {"Subject", "Account_Name", "Account_Name.Account_Name", "Account_Name.Billing_City"}
    assert got["Account_Name"] == {"id": account["id"]} and got["Account_Name.Account_Name"] == account["name"]


def test_quotes_inside_strings_are_doubled(demo: ZohoCaller) -> None:
    found = rows(demo, "select Account_Name, Last_Name from Contacts where Last_Name = 'O''Brien'")
    assert [r["Last_Name"] for r in found] == ["O'Brien"]
    accounts = rows(demo, "select Account_Name from Accounts where Account_Name like 'O''Brien%'")
    assert [r["Account_Name"] for r in accounts] == ["O'Brien Plumbing Ltd"]
    # A backslash is an ordinary character in COQL, so a backslash-escaped quote ends the string early.
    assert error(demo, r"select id from Contacts where Last_Name = 'O\'Brien'")["code"] == "SYNTAX_ERROR"
    double = rows(demo, 'select id from Contacts where Last_Name = "O\'Brien"')
    assert len(double) == 1


def test_order_by_and_both_limit_forms(demo: ZohoCaller, invoices: list[dict[str, Any]]) -> None:
    ordered = sorted(invoices, key=lambda r: (-r["Grand_Total"], r["id"]))
    top = rows(demo, "select id, Grand_Total from Invoices where id is not null order by Grand_Total desc, id asc "
                     "limit 5, 10")
    assert [r["id"] for r in top] == [r["id"] for r in ordered[5:15]]
    same = rows(demo, "select id from Invoices where id is not null order by Grand_Total desc, id asc "
                      "LIMIT 10 OFFSET 5")
    assert [r["id"] for r in same] == [r["id"] for r in top]
    default = demo.ok(demo.coql("select id from Invoiced_Items where id is not null"))
    assert default["info"] == {"count": 200, "more_records": True}
    last = demo.ok(demo.coql("select id from Invoices where id is not null limit 140, 20"))
    assert last["info"] == {"count": 10, "more_records": False}


def test_keyset_paging_on_modified_time(demo: ZohoCaller, invoices: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    where = "id is not null"
    while True:
        page = rows(demo, f"select id, Modified_Time from Invoices where {where} "
                          "order by Modified_Time asc, id asc limit 40")
        if not page:
            break
        seen += [r["id"] for r in page]
        last = page[-1]
        where = (f"(Modified_Time > '{last['Modified_Time']}' or (Modified_Time = '{last['Modified_Time']}' "
                 f"and id > {last['id']}))")
    assert len(seen) == len(set(seen)) == len(invoices)


def test_subform_modules_are_queryable(demo: ZohoCaller, invoices: list[dict[str, Any]]) -> None:
    parent = invoices[0]["id"]
    lines = rows(demo, f"select id, Product_Name, Quantity, Net_Total, Parent_Id from Invoiced_Items "
                       f"where Parent_Id = '{parent}'")
    record = demo.record("Invoices", parent)
    assert sorted(r["id"] for r in lines) == sorted(r["id"] for r in record["Invoiced_Items"])
    assert all(r["Parent_Id"] == {"id": parent} for r in lines)
    by_product = rows(demo, "select id, Product_Name.Product_Code from Invoiced_Items where "
                            "Product_Name.Product_Code = 'SV-004' limit 2000")
    assert by_product and {r["Product_Name.Product_Code"] for r in by_product} == {"SV-004"}


def test_limits_and_errors(demo: ZohoCaller) -> None:
    missing_where = error(demo, "select id from Invoices limit 5")
    assert missing_where == {"code": "SYNTAX_ERROR", "details": {"clause": "where"}, "message": "missing clause",
                             "status": "error"}
    too_many = error(demo, "select id from Invoices where id is not null limit 2001")
    assert too_many["code"] == "LIMIT_EXCEEDED"
    too_far = error(demo, "select id from Invoices where id is not null limit 99000, 2000")
    assert too_far["code"] == "LIMIT_EXCEEDED"
    assert demo.coql("select id from Invoices where id is not null limit 98000, 2000").status_code == 204
    unknown = error(demo, "select Colour from Invoices where id is not null")
    assert unknown["code"] == "INVALID_QUERY" and unknown["details"]["column_name"] == "Colour"
    assert error(demo, "select id from Widgets where id is not null")["code"] == "INVALID_MODULE"
    assert error(demo, "select * from Invoices where id is not null")["code"] == "SYNTAX_ERROR"
    assert error(demo, "select id from Invoices where Grand_Total like '1%'")["code"] == "INVALID_QUERY"
    assert error(demo, "select id from Invoices where Grand_Total = 'lots'")["code"] == "INVALID_QUERY"
    assert error(demo, "select id from Invoices where id is not null limit abc")["code"] == "INVALID_QUERY"
    assert error(demo, "select id, id from Invoices where id is not null")["code"] == "DUPLICATE_DATA"
    empty = demo.post("/coql", {})
    assert empty.status_code == 400 and empty.json()["code"] == "MANDATORY_NOT_FOUND"
    assert demo.coql("select id from Invoices where Subject = 'no such subject'").status_code == 204


def test_reserved_words_as_columns_are_quoted(demo: ZohoCaller) -> None:
    found = rows(demo, "select 'Status', Subject from Invoices where Status = 'On Hold'")
    assert [r["Status"] for r in found] == ["On Hold"]


def test_coql_costs_credits_by_limit_band_and_counts_as_a_read(zoho: ZohoCaller) -> None:
    def used() -> int:
        return zoho.admin("GET", "limits")["orgs"][zoho.org_id]["credits_used"]

    for limit, cost in ((200, 1), (201, 2), (1000, 2), (1001, 3), (2000, 3)):
        before = used()
        zoho.coql(f"select id from Invoices where id is not null limit {limit}")
        assert used() - before == cost, limit
    before = used()
    zoho.coql("select id from Invoices where id is not null")  # default LIMIT 200
    assert used() - before == 1
    stats = zoho.admin("GET", "stats")
    assert stats["writes"] == 0 and stats["reads"] >= 6
