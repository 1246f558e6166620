"""uvicorn's httptools protocol with two hardenings for hostile clients.

* **A cap on the request head.** httptools buffers a request line and headers of
  any size (a 2 MB header was accepted whole), so a client could make the server
  hold megabytes per connection before the app ever runs. Once more than
  ``MAX_HEAD_BYTES`` arrived without the head being complete, the answer is ``431``
  and the connection is closed.
* **JSON for malformed requests.** uvicorn answers parser errors (conflicting
  ``Content-Length``/``Transfer-Encoding``, bad chunking, ...) with a plain-text
  ``400``; SPEC §1 wants every body to be JSON, so it is the usual problem body.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tidings.api.problems import problem_body

MAX_HEAD_BYTES = 32 * 1024  # request line + headers; nginx allows 4 x 8 KiB by default
# After an error answer, keep reading (and dropping) for this long before closing:
# closing a socket with unread input sends a RST, and the client's TCP stack may
# then drop our answer before the client reads it ("lingering close", as nginx).
LINGER_S = 2.0


class TidingsHttpProtocol(HttpToolsProtocol):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_done = True
        self._head_bytes = 0
        self._discarding = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done = False
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        waiting_for_head = not self._head_done
        super().data_received(data)
        if self._discarding or self.transport.is_closing():
            return
        if waiting_for_head or not self._head_done:
            self._head_bytes += len(data)
            if not self._head_done and self._head_bytes > MAX_HEAD_BYTES:
                detail = f"The request line and headers exceed {MAX_HEAD_BYTES} bytes."
                self._answer(431, detail)

    def send_400_response(self, msg: str) -> None:
        self._answer(400, "The request is not valid HTTP/1.1 (" + msg.rstrip(".") + ").")

    def _answer(self, status: int, detail: str) -> None:
        body = problem_body(status, detail)
        reason = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}[status]
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self._discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)
