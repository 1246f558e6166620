"""The request body as granian hands it over: a ``Content-Length`` body in one message
marked ``more_body``, then an empty last message (checked against granian 2.8)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from tidings.api.middleware import read_body


class Server:
    """``receive`` answering the given messages in turn; counts what was asked."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self._messages = list(messages)
        self.asked = 0

    async def receive(self) -> dict[str, Any]:
        self.asked += 1
        return self._messages.pop(0)


def _chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_with_its_declared_length_is_whole_without_the_empty_last_message() -> None:
    server = Server(_chunk(b'{"data":"x"}', True), _chunk(b"", False))
    headers = [(b"content-length", b"12")]
    assert await read_body(server.receive, headers, 1024) == b'{"data":"x"}'
    assert server.asked == 1  # one round trip through the server, not two


async def test_a_body_shorter_than_declared_is_read_on() -> None:
    server = Server(_chunk(b'{"data"', True), _chunk(b':"x"}', True), _chunk(b"", False))
    headers = [(b"content-length", b"12")]
    assert await read_body(server.receive, headers, 1024) == b'{"data":"x"}'
    assert server.asked == 3


async def test_transfer_encoding_frames_the_body_even_with_a_content_length() -> None:
    # The parser went by the chunked framing: the declared length proves nothing.
    server = Server(_chunk(b"abcde", True), _chunk(b"fgh", True), _chunk(b"", False))
    headers = [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]
    assert await read_body(server.receive, headers, 1024) == b"abcdefgh"


async def test_a_client_gone_after_part_of_the_body_is_a_400() -> None:
    server = Server(_chunk(b"abc", True), {"type": "http.disconnect"})
    answer = await read_body(server.receive, [(b"content-length", b"12")], 1024)
    assert isinstance(answer, Response) and answer.status_code == 400


async def test_a_body_past_the_cap_is_a_413_whatever_it_declared() -> None:
    server = Server(_chunk(b"a" * 600, True), _chunk(b"a" * 600, True), _chunk(b"", False))
    answer = await read_body(server.receive, [(b"content-length", b"10")], 1024)
    assert isinstance(answer, Response) and answer.status_code == 413
