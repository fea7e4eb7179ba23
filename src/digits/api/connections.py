"""Connection limits: a header deadline, a whole-body deadline and a connection cap, per worker.

What uvicorn (0.54) offers does not bound a slow or idle client: `limit_concurrency` answers 503
once a request's header is parsed, but the connection is accepted and held before that;
`timeout_keep_alive` is armed only after an answer and cancelled by the first byte of the next
request; `h11_max_incomplete_event_size` counts bytes, not time (and h11 only). A connection that
sends half a header and goes quiet was held forever, and thousands of them reached the open-file
limit. `Guarded` is uvicorn's own HTTP protocol (httptools, else h11) with three bounds:

* header deadline: a connection must deliver a complete request header within
  `header_timeout_seconds` of opening (or of its previous answer), else it is closed;
* whole-body deadline: the body must have arrived `timeout_seconds` after the header. The app
  answers 408 when it is waiting for it (telemetry.Guard, the same deadline); here, a body still
  arriving at the deadline turns keep-alive off, so the connection closes with the answer (or at
  once if the answer has gone): a body dribbled a byte at a time cannot hold a connection;
* connection cap: at most `max_connections` per worker. One more closes the oldest idle
  connection (no request in progress: a half header or a keep-alive wait), the cheapest to
  lose, so idle connections never lock out a client that sends whole requests; when every
  connection has a request in progress, the newcomer gets a 503 and is closed.

`protocol(settings)` is the class uvicorn takes as `http=` (a picklable partial, so worker
processes get the same limits).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from uvicorn.protocols.http.auto import AutoHTTPProtocol

log = logging.getLogger("digits.api")
_BUSY = b'{"detail":"every connection of this server is busy; retry in a second"}'
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        b"connection: close\r\ncontent-length: " + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY)


@dataclass(frozen=True)
class Limits:
    header_seconds: float
    body_seconds: float
    max_connections: int


def protocol(settings) -> partial:
    """uvicorn's `http=` for `settings`: `Guarded` with the settings' limits."""
    return partial(Guarded, limits=Limits(settings.header_timeout_seconds, settings.timeout_seconds,
                                          settings.max_connections))


def _idle_of(server_state) -> dict:
    """The server's idle connections, oldest first (a dict kept in insertion order)."""
    idle = getattr(server_state, "digits_idle", None)
    if idle is None:
        idle = server_state.digits_idle = {}
    return idle


class Guarded(AutoHTTPProtocol):
    def __init__(self, config, server_state, app_state, _loop=None, limits: Limits | None = None):
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or Limits(10.0, 30.0, 1000)
        self.idle = _idle_of(server_state)
        self._timer = None
        self._waiting_since = None  # the cycle that was current when the header deadline was armed

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            if self.idle:  # the oldest connection without a request in progress makes room
                oldest = next(iter(self.idle))
                oldest._close()
            else:
                transport.write(BUSY)
                self._close()
                return
        self._await_header()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle and self.cycle is not None:  # a request header is complete
            self._request_started(self.cycle)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_header()

    def connection_lost(self, exc) -> None:
        self.idle.pop(self, None)
        self._cancel_timer()
        super().connection_lost(exc)

    # ---------------------------------------------------------------- the deadlines

    def _await_header(self) -> None:
        """Between requests (or before the first): idle, and the next header is due in header_seconds."""
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request is already in progress
        self.idle.pop(self, None)
        self.idle[self] = None  # the newest idle connection goes last
        self._cancel_timer()
        self._waiting_since = self.cycle
        self._timer = self.loop.call_later(self.limits.header_seconds, self._header_late)

    def _header_late(self) -> None:
        self._timer = None
        if self.cycle is self._waiting_since:  # no complete header since the deadline was armed
            self._close()

    def _request_started(self, cycle) -> None:
        self.idle.pop(self, None)
        self._cancel_timer()
        if cycle.more_body:
            self._timer = self.loop.call_later(self.limits.body_seconds, self._body_late, cycle)

    def _body_late(self, cycle) -> None:
        self._timer = None
        if cycle is self.cycle and cycle.more_body:  # the body is still arriving
            cycle.keep_alive = False  # the answer (the app's 408, or whatever it answers) closes the connection
            if cycle.response_complete:
                self._close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        self.idle.pop(self, None)
        self._cancel_timer()
        if not self.transport.is_closing():
            self.transport.close()
