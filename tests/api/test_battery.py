"""Bad HTTP inputs against a real `digits serve` on loopback (issue 15): the reduced battery of battery.py
(every route and protocol; the full one, with the issue's inputs at full size, is benchmarks/battery.py),
and a client that hangs up mid-body."""

from __future__ import annotations

import re
import socket
import time

import pytest

from battery import cases, run, summary
from bodies import LiveServer

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    live = LiveServer(tiny_run, tmp_path_factory.mktemp("battery-server")).start()
    try:
        yield live
    finally:
        live.stop()


def _requests(url: str, status: str) -> float:
    """Requests counted in /metrics with a status matching the regular expression `status`."""
    import httpx2 as httpx

    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(value) for value in re.findall(rf'^digits_http_requests_total{{.*status="{status}"}} (\S+)$',
                                                     metrics, re.M))


def _hang_up_mid_body(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\n\r\n{\"pix")


def test_a_client_hanging_up_mid_body_is_one_log_line_and_counted_as_499(server):
    before, lines = _requests(server.url, "499"), len(server.log.read_text().splitlines())
    for _ in range(3):
        _hang_up_mid_body(server.url)
    deadline = time.time() + 10
    while _requests(server.url, "499") < before + 3 and time.time() < deadline:
        time.sleep(0.1)
    assert _requests(server.url, "499") == before + 3
    new = server.log.read_text().splitlines()[lines:]
    assert len(new) == 3 and all("the client disconnected before sending the whole request body" in line
                                 for line in new), new
    assert _requests(server.url, r"5\d\d") == 0


def test_the_reduced_battery_gets_no_server_error_and_the_server_keeps_serving(server, tiny_run):
    import httpx2 as httpx

    info = httpx.get(f"{server.url}/info", timeout=10).json()
    battery = cases(info["name"], info["max_batch"], info["max_body_bytes"], full=False)
    assert len(battery) >= 200
    results = run(server.url, battery, timeout=30, forbidden=("Traceback", str(tiny_run.resolve().parent)))
    figures = summary(results)
    assert figures["problems"] == [] and figures["server_errors"] == 0, figures
    assert figures["max_answer_bytes"] < 2**20  # no request is answered with more than a megabyte
    assert {"400", "404", "405", "413", "415", "422"} <= set(figures["by_status"])
    answer = httpx.post(f"{server.url}/predict", json={"pixels": [[0] * 28] * 28}, timeout=10)
    assert answer.status_code == 200 and answer.json()["predictions"]
    assert httpx.get(f"{server.url}/health/ready", timeout=10).status_code == 200
    assert _requests(server.url, r"5\d\d") == 0
    assert "Traceback" not in server.log.read_text()
