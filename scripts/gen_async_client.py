#!/usr/bin/env python3
"""Write client/tidings_client/_async.py from _sync.py beside it, so the two cannot drift.

    scripts/gen_async_client.py          rewrite _async.py
    scripts/gen_async_client.py --check  exit 1 if _async.py is stale

Rules: ``Client`` -> ``AsyncClient``, ``httpx.Client`` -> ``httpx.AsyncClient``; every
method that runs a call becomes ``async def`` and awaits it; generators become async
generators; ``iter_*`` methods that only delegate stay plain ``def`` returning an
``AsyncIterator``. The output is formatted with ruff.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parent.parent / "client" / "tidings_client"
HEADER = (
    '"""The asyncio client: the same methods as :class:`Client`, awaited.\n\n'
    'Generated from ``_sync.py`` by ``scripts/gen_async_client.py``; edit that file.\n"""'
)

REPLACEMENTS = [
    ('"""The blocking client."""', HEADER),
    ("import time\n", "import asyncio\n"),
    ("time.sleep(", "await asyncio.sleep("),
    (
        "from collections.abc import Iterator, Mapping, Sequence",
        "from collections.abc import AsyncIterator, Mapping, Sequence",
    ),
    ("class Client:", "class AsyncClient:"),
    (
        '``Client("http://127.0.0.1:8080", api_key)``; use as a context manager or ``close()``.',
        "``AsyncClient(base_url, api_key)``; ``async with`` it or ``await aclose()``.",
    ),
    ("httpx.Client", "httpx.AsyncClient"),
    ("def __enter__(self) -> Client:", "async def __aenter__(self) -> AsyncClient:"),
    ("def __exit__(", "async def __aexit__("),
    ("self.close()", "await self.aclose()"),
    ("def close(self) -> None:", "async def aclose(self) -> None:"),
    ("self._http.close()", "await self._http.aclose()"),
    ("-> Iterator[", "-> AsyncIterator["),
]


def _method(block: str) -> str:
    name = re.match(r"\n    def (\w+)", block)
    if name is None or name.group(1) == "__init__":
        return block
    generator = "yield" in block
    if name.group(1).startswith("iter_") and not generator:
        return block  # returns an async iterator made elsewhere
    block = block.replace("\n    def ", "\n    async def ", 1)
    block = block.replace("self.run(", "await self.run(")
    block = block.replace("response = self._http.request(", "response = await self._http.request(")
    block = re.sub(r"for (\w+) in self\.pages\(", r"async for \1 in self.pages(", block)
    return re.sub(
        r"\n(\s+)yield from (.+)\n",
        lambda m: f"\n{m[1]}for item in {m[2]}:\n{m[1]}    yield item\n",
        block,
    )


def generate() -> str:
    source = (CLIENT / "_sync.py").read_text()
    for old, new in REPLACEMENTS:
        assert old in source, f"_sync.py no longer contains {old!r}"
        source = source.replace(old, new)
    source = "".join(_method(b) for b in re.split(r"(?=\n    def )", source))
    formatted = subprocess.run(
        ["ruff", "format", "--stdin-filename", str(CLIENT / "_async.py"), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> int:
    fresh = generate()
    target = CLIENT / "_async.py"
    if "--check" in sys.argv:
        if target.read_text() != fresh:
            print(f"{target} is stale: run scripts/gen_async_client.py")
            return 1
        return 0
    target.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
