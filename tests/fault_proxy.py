"""A real HTTP endpoint in front of the moto server that fails chosen calls as AWS can.

moto never throttles and never fails one entry of a batch call, yet AWS does both, and
the sinks have code for both. This proxy listens on 127.0.0.1, forwards every request to
moto unchanged, and applies the faults a test arms:

* :meth:`FaultProxy.throttle` answers the next calls of an operation with a throttling
  error (HTTP 400), in the operation's protocol, without forwarding them;
* :meth:`FaultProxy.fail_entries` takes the entries of a batch call whose text contains a
  marker out of the request before forwarding it, and reports them in the response as
  failed, the way SQS (``Failed``) and EventBridge (``ErrorCode``) report one entry;
* :meth:`FaultProxy.hang` makes it an endpoint that hangs: every later request is read
  and never answered (the connection stays open) until the proxy stops.

The client under test speaks plain HTTP to it and parses real AWS responses: nothing in
botocore is patched. (Request signatures are not checked by moto, so the proxy may edit
a signed body.)
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class _EntryFault:
    operation: str
    marker: str
    code: str
    sender_fault: bool
    times: int


class FaultProxy:
    """Forwards to ``upstream``; see the module docstring for the faults it can inject."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._lock = threading.Lock()
        self._throttles: dict[str, int] = {}
        self._entry_faults: list[_EntryFault] = []
        self.calls: list[str] = []  # every operation received, in order
        self.throttled = 0
        self.failed_entries = 0
        self.hung = 0  # requests read and left unanswered
        self._hanging = threading.Event()
        self._unhang = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._unhang.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def throttle(self, operation: str, times: int) -> None:
        """Answer the next ``times`` calls of ``operation`` (e.g. "SendMessageBatch") 400."""
        with self._lock:
            self._throttles[operation] = self._throttles.get(operation, 0) + times

    def fail_entries(
        self, operation: str, marker: str, *, code: str, sender_fault: bool = False, times: int
    ) -> None:
        """Fail, in the next ``times`` calls that carry one, every entry containing ``marker``."""
        with self._lock:
            self._entry_faults.append(_EntryFault(operation, marker, code, sender_fault, times))

    def hang(self) -> None:
        """From now on, read every request and never answer it (until :meth:`stop`)."""
        self._hanging.set()

    # -- the server side --------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # aiohttp keeps connections alive

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy._hanging.is_set():
                    with proxy._lock:
                        proxy.hung += 1
                    proxy._unhang.wait()  # accepted, read, never answered
                    self.close_connection = True
                    return
                status, headers, reply = proxy._handle(self.command, self.path, self.headers, body)
                try:
                    self.send_response(status)
                    for name, value in headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except ConnectionError:  # the client gave up on a long poll as it closed
                    self.close_connection = True

            do_GET = do_POST

        return Handler

    def _handle(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = headers.get("X-Amz-Target", "")
        json_protocol = bool(target)
        if json_protocol:
            operation = target.rsplit(".", 1)[-1]
        else:
            form = urllib.parse.parse_qs(body.decode("utf-8"))
            operation = form.get("Action", [""])[0]
        with self._lock:
            self.calls.append(operation)
            if self._throttles.get(operation, 0) > 0:
                self._throttles[operation] -= 1
                self.throttled += 1
                return _throttling(json_protocol)
            faults = [f for f in self._entry_faults if f.operation == operation and f.times > 0]
        if not faults or not json_protocol:
            return self._forward(method, path, headers, body)
        request = json.loads(body)
        entries: list[dict[str, Any]] = request["Entries"]
        failing: dict[int, _EntryFault] = {}
        with self._lock:
            for fault in faults:
                hits = [i for i, e in enumerate(entries) if fault.marker in json.dumps(e)]
                if hits and fault.times > 0:
                    fault.times -= 1
                    failing.update(dict.fromkeys(hits, fault))
            self.failed_entries += len(failing)
        kept = [e for i, e in enumerate(entries) if i not in failing]
        if kept:
            request["Entries"] = kept
            status, out_headers, reply = self._forward(
                method, path, headers, json.dumps(request).encode()
            )
            if status != 200:
                return status, out_headers, reply
            response = json.loads(reply)
        else:
            status, out_headers = 200, [("Content-Type", headers.get("Content-Type", ""))]
            response = {}
        if operation == "PutEvents":  # results are positional: put the failures in place
            forwarded = iter(response.get("Entries", []))
            response["Entries"] = [
                {"ErrorCode": failing[i].code, "ErrorMessage": "Injected by the test proxy."}
                if i in failing
                else next(forwarded)
                for i in range(len(entries))
            ]
            response["FailedEntryCount"] = response.get("FailedEntryCount", 0) + len(failing)
        else:  # SQS: Successful / Failed, by entry Id
            response.setdefault("Successful", [])
            response["Failed"] = [
                *response.get("Failed", []),
                *(
                    {
                        "Id": entries[i]["Id"],
                        "SenderFault": fault.sender_fault,
                        "Code": fault.code,
                        "Message": "Injected by the test proxy.",
                    }
                    for i, fault in failing.items()
                ),
            ]
        return status, out_headers, json.dumps(response).encode()

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, path, body=body, headers=out)
            response = conn.getresponse()
            reply = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, kept, reply
        finally:
            conn.close()


def _throttling(json_protocol: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    if json_protocol:
        body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
        return 400, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(body).encode()
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        "<Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
    )
    return 400, [("Content-Type", "text/xml")], xml.encode()
