"""The shared limiter and retry loop, against a local HTTP server (no API semantics involved)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connectors.errors import BadResponseError, RateLimitError, ServerError, TransportError
from connectors.http import HttpClient, RetryPolicy, RollingWindowLimiter


def test_limiter_never_exceeds_window_or_concurrency() -> None:
    limiter = RollingWindowLimiter(calls_per_window=10, window_seconds=0.5, concurrency=3)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def call() -> None:
        nonlocal in_flight, peak
        with limiter.slot():
            start = time.monotonic()
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.01)
            with lock:
                in_flight -= 1
            end = time.monotonic()
        with lock:
            spans.append((start, end))

    threads = [threading.Thread(target=call) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak <= 3
    starts = sorted(s for s, _ in spans)
    # Any window of 0.5 s (anchored at each start) holds at most 10 starts.
    for s in starts:
        assert sum(1 for x in starts if s <= x < s + 0.5) <= 10


class _Handler(BaseHTTPRequestHandler):
    script: list[tuple[int, dict[str, str], bytes]] = []
    hits = 0

    def _answer(self) -> None:
        cls = type(self)
        cls.hits += 1
        status, headers, body = cls.script.pop(0) if cls.script else (200, {"Content-Type": "application/json"}, b"{}")
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.hits = 0
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()


def _client(sleeps: list[float]) -> HttpClient:
    return HttpClient(retry=RetryPolicy(max_retries=3, base_seconds=0.01, sleep=sleeps.append))


JSON = {"Content-Type": "application/json"}


def test_429_waits_retry_after_then_succeeds(server) -> None:
    url, handler = server
    handler.script = [(429, {"Retry-After": "7", **JSON}, b"{}"), (200, JSON, b'{"ok": true}')]
    sleeps: list[float] = []
    answer = _client(sleeps).send("GET", url, idempotent=True)
    assert answer.body == {"ok": True} and sleeps == [7.0]


def test_html_502_and_truncated_json_are_retried_for_reads(server) -> None:
    url, handler = server
    handler.script = [(502, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>"),
                      (200, JSON, b'{"Invoices": [')]
    sleeps: list[float] = []
    answer = _client(sleeps).send("GET", url, idempotent=True)
    assert answer.body == {} and handler.hits == 3 and len(sleeps) == 2


def test_unreadable_answer_to_a_non_idempotent_write_is_not_retried(server) -> None:
    url, handler = server
    handler.script = [(200, {"Content-Type": "text/plain"}, b"")]
    with pytest.raises(BadResponseError) as info:
        _client([]).send("POST", url, idempotent=False)
    assert info.value.outcome_unknown and handler.hits == 1


def test_gives_up_after_max_retries(server) -> None:
    url, handler = server
    handler.script = [(503, JSON, b"{}")] * 10
    with pytest.raises(ServerError):
        _client([]).send("GET", url, idempotent=True)
    assert handler.hits == 4


def test_connection_refused_is_a_transport_error() -> None:
    with pytest.raises(TransportError):
        _client([]).send("GET", "http://127.0.0.1:9", idempotent=False)


def test_rate_limit_error_is_typed(server) -> None:
    url, handler = server
    handler.script = [(429, {"Retry-After": "1", **JSON}, b"{}")] * 10
    with pytest.raises(RateLimitError) as info:
        _client([]).send("GET", url, idempotent=True)
    assert info.value.retry_after == 1.0
