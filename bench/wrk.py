"""``wrk`` (C, epoll) as the load generator for throughput runs, so the client is not
the bottleneck; installed from Debian when missing."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    requests: int
    errors: int  # socket errors plus non-2xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, float]:
        return {
            "rps": round(self.requests_per_s),
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
        }


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def _script(body: bytes | None, headers: dict[str, str], extra_lua: str = "") -> Path:
    if body is None:
        lines = ['wrk.method = "GET"']
    else:
        lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    lines += [extra_lua] if extra_lua else []
    path = Path(tempfile.mkstemp(prefix="tidings-bench-", suffix=".lua")[1])
    path.write_text("\n".join(lines) + "\n")
    return path


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not match:
        raise ValueError(f"wrk latency {value!r}")
    return round(float(match[1]) * _UNITS[match[2]], 3)


def parse(output: str) -> WrkResult:
    percent = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", output, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        requests=int(re.search(r"(\d+) requests in", output)[1]),  # type: ignore[index]
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
        p50_ms=_ms(percent["50"]),
        p90_ms=_ms(percent["90"]),
        p99_ms=_ms(percent["99"]),
    )


async def get(url: str, headers: dict[str, str], connections: int, seconds: float) -> WrkResult:
    return await post(url, None, headers, connections, seconds)


async def post(
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    extra_lua: str = "",
) -> WrkResult:
    """``wrk`` POSTing ``body`` to ``url`` (GET when ``body`` is None); ``extra_lua`` may
    define a ``request`` function (e.g. a header that changes per request)."""
    script = _script(body, headers, extra_lua)
    try:
        proc = await asyncio.create_subprocess_exec(
            ensure_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            url,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
    finally:
        script.unlink()
    return parse(out.decode())
