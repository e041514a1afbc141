"""The Zoho sandbox's rolling windows over real HTTP, on the sandbox's virtual clock only.

- Credits (zoho-api-notes.md §4.1, §4.3): a rolling 24-hour pool per org — "for every API call, we
  will check the API credits consumed in the last 24 hours" — so credits come back 24 hours after
  the call that spent them, never all at once at a daily reset. ``X-API-CREDITS-REMAINING`` is sent
  once half the credits are used; exhaustion is HTTP 429 ``TOO_MANY_REQUESTS``.
- Access-token mints (notes §2.3): 10 per refresh token per 10 minutes, then HTTP 200
  ``"error": "Access Denied"``; at most 15 access tokens valid at once.

Clock moves keep a 60-second margin to each boundary, so the real seconds the test itself takes
never decide an assertion.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_sandbox_zoho_support import ZohoCaller, connected

HOUR = 3600
HEADER = "X-API-CREDITS-REMAINING"
#: The 429 body for a spent pool. The notes (§4.3) quote Zoho's description of the code as "Number of
#: API requests for the 24 hour period is exceeded or the concurrency limit of the user for the app is
#: exceeded" and say the message text is the only discriminator between the causes: a spent pool
#: answers the credits half of that sentence (the connector keys on it, connectors/zoho.py).
NOTES_429_MESSAGE = ("Number of API requests for the 24 hour period is exceeded or the concurrency limit of the "
                     "user for the app is exceeded")
CREDITS_SPENT = {"code": "TOO_MANY_REQUESTS", "details": {},
                 "message": "Number of API requests for the 24 hour period is exceeded", "status": "error"}
ACCESS_DENIED = {"error_description": "You have made too many requests continuously. Please try again after some "
                                      "time.", "error": "Access Denied", "status": "failure"}
INVALID_TOKEN = {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}


@pytest.fixture()
def zoho(tmp_path: Path) -> Iterator[ZohoCaller]:
    """A fresh demo sandbox per test (every test here moves the clock)."""
    yield from connected(tmp_path)


def usage(zoho: ZohoCaller, org: str | None = None) -> dict[str, int]:
    """The org's pool as the sandbox sees it now (admin route: costs no credit)."""
    return zoho.admin("GET", "limits")["orgs"][org or zoho.org_id]


def spend(zoho: ZohoCaller, n: int) -> requests.Response:
    """``n`` one-credit calls that must all succeed; the last answer."""
    answer = None
    for _ in range(n):
        answer = zoho.get("/org")
        assert answer.status_code == 200, answer.text
    assert answer is not None
    return answer


def later(zoho: ZohoCaller, seconds: float) -> None:
    """Move the sandbox clock and take a fresh token (access tokens live one hour; minting is free)."""
    zoho.advance(seconds)
    zoho.refresh()


def mint(zoho: ZohoCaller, refresh_token: str | None = None) -> requests.Response:
    return zoho.token(grant_type="refresh_token", client_id=zoho.client_id, client_secret=zoho.client_secret,
                      refresh_token=refresh_token or zoho.refresh_token)


# --- credits ---------------------------------------------------------------------------------------
def test_credits_come_back_24_hours_after_the_call_that_spent_them(zoho: ZohoCaller) -> None:
    zoho.admin("PUT", "limits", json={"credits_per_day": 20})
    assert usage(zoho)["credits_used"] == 0  # minting tokens costs no credit

    # t0: 8 credits (a 30-record insert costs 3, then 5 single calls); under half used: no header.
    insert = zoho.post("/Accounts", {"data": [{"Account_Name": f"Rolling {i}"} for i in range(30)], "trigger": []})
    assert insert.status_code == 201, insert.text
    assert HEADER not in spend(zoho, 5).headers
    assert usage(zoho)["credits_used"] == 8

    # t0+12h: 10 more. The header appears at half the pool and counts down with each call.
    later(zoho, 12 * HOUR)
    assert HEADER not in zoho.get("/org").headers  # 9 used
    assert zoho.get("/org").headers[HEADER] == "10"  # 10 used: half the pool
    assert spend(zoho, 8).headers[HEADER] == "2"
    assert usage(zoho)["credits_used"] == 18

    # A minute before t0+24h nothing has come back (no fixed daily reset in between).
    later(zoho, 12 * HOUR - 60)
    assert usage(zoho)["credits_used"] == 18

    # t0+24h+1s: exactly the t0 credits are back; the t0+12h ones are still counted.
    later(zoho, 61)
    pool = usage(zoho)
    assert (pool["credits_used"], pool["credits_remaining"]) == (10, 10)
    answer = zoho.get("/org")
    assert answer.status_code == 200 and answer.headers[HEADER] == "9"  # 20 - 10 (t0+12h) - 1 (this call)

    # A minute before t0+36h the t0+12h credits are still out.
    later(zoho, 12 * HOUR - 61)
    assert usage(zoho)["credits_used"] == 11

    # t0+36h+1s: all of them are back; only the call made at t0+24h+1s still counts.
    later(zoho, 61)
    assert usage(zoho)["credits_used"] == 1
    answer = zoho.get("/org")
    assert answer.status_code == 200 and HEADER not in answer.headers  # 2 of 20 used: under half
    assert usage(zoho)["credits_remaining"] == 18


def test_exhaustion_answers_429_too_many_requests_until_the_oldest_credits_return(zoho: ZohoCaller) -> None:
    assert NOTES_429_MESSAGE.startswith(CREDITS_SPENT["message"])
    zoho.admin("PUT", "limits", json={"credits_per_day": 10})
    spend(zoho, 4)  # t0
    later(zoho, 12 * HOUR)
    assert spend(zoho, 6).headers[HEADER] == "0"  # t0+12h: the pool is spent

    for refused in (zoho.get("/org"),
                    zoho.get("/Accounts", fields="Account_Name", per_page=1),
                    zoho.post("/Accounts", {"data": [{"Account_Name": "Over the limit"}], "trigger": []}),
                    zoho.coql("select id from Accounts where id is not null limit 5")):
        assert refused.status_code == 429, refused.text
        assert refused.json() == CREDITS_SPENT
        assert refused.headers[HEADER] == "0"
    assert usage(zoho)["credits_used"] == 10  # a refused call costs nothing
    assert zoho.admin("GET", "stats")["rate_limited"] == 4

    # Still spent a minute before t0+24h, and another org's pool is untouched (credits are per org).
    later(zoho, 12 * HOUR - 60)
    assert zoho.get("/org").json() == CREDITS_SPENT
    other = ZohoCaller.connect(zoho.url, zoho.admin("POST", "orgs", json={"name": "Other Ltd"})["org_id"])
    assert other.get("/org").status_code == 200

    # t0+24h+1s: the 4 credits spent at t0 are back, and only those.
    later(zoho, 61)
    remaining = []
    for _ in range(4):
        answer = zoho.get("/org")
        assert answer.status_code == 200, answer.text
        remaining.append(answer.headers[HEADER])
    assert remaining == ["3", "2", "1", "0"]
    refused = zoho.get("/org")
    assert refused.status_code == 429 and refused.json() == CREDITS_SPENT
    # The insert refused while the pool was spent wrote nothing.
    assert zoho.coql("select id from Accounts where Account_Name = 'Over the limit'").status_code == 429
    later(zoho, 12 * HOUR)  # t0+36h+1s: the t0+12h credits are back too
    assert zoho.coql("select id from Accounts where Account_Name = 'Over the limit'").status_code == 204


# --- access-token mints ----------------------------------------------------------------------------
def test_ten_mints_per_refresh_token_per_ten_minutes_and_fifteen_valid_at_once(zoho: ZohoCaller) -> None:
    tokens = [zoho.access_token]  # the fixture's mint is the first of ten
    for _ in range(9):
        tokens.append(zoho.refresh()["access_token"])
    for _ in range(2):  # the eleventh and every further attempt in the window: HTTP 200, Access Denied
        denied = mint(zoho)
        assert denied.status_code == 200 and denied.json() == ACCESS_DENIED
    # The limit is per refresh token: the client's other refresh token still mints.
    other_refresh = zoho.admin("GET", "credentials")["refresh_token"]
    assert "access_token" in mint(zoho, other_refresh).json()
    # A denial takes nothing away: every token minted so far still works.
    for token in tokens:
        zoho.access_token = token
        assert zoho.get("/org").status_code == 200

    zoho.advance(540)  # nine minutes on: still denied
    assert mint(zoho).json() == ACCESS_DENIED
    zoho.advance(61)  # ten minutes and a second after the first mints: minting works again
    for _ in range(6):
        tokens.append(zoho.refresh()["access_token"])
    assert len(tokens) == 16  # all inside the first token's hour, so only the 15 cap can end one
    zoho.access_token = tokens[0]
    assert zoho.get("/org").json() == INVALID_TOKEN  # the 16th invalidated the oldest
    for token in tokens[1:]:
        zoho.access_token = token
        assert zoho.get("/org").status_code == 200
