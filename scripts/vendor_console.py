#!/usr/bin/env python3
"""Refresh the JavaScript libraries vendored into the package for /console and /docs.

    python scripts/vendor_console.py            # fetch the pinned versions, verify, write
    python scripts/vendor_console.py --latest   # print the registry's newest versions

The pins below are the one place the versions live. Each release is fetched with
`npm pack` (npm's own registry client; node is needed here only, never at install),
its tarball's sha512 is checked against the pinned `dist.integrity`, and only the
files listed are taken, with the package's licence. Each target folder gets a
``VENDORED.json`` naming what came from where with every file's sha256;
``tests/unit/test_console_assets.py`` checks the files on disk against it and the
pins, so a hand edit or a half-finished bump fails the suite.

To bump: run ``--latest``, paste the new version and integrity into PINS, run again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "tidings" / "web" / "console" / "vendor"
DOCS = ROOT / "tidings" / "web" / "docs" / "vendor"

Rewrite = Callable[[str], str]


def _drop_source_map(text: str) -> str:
    """The maps are not vendored: without this line, open devtools ask for a 404."""
    return re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", text)


def _preact_hooks(text: str) -> str:
    """Hooks import the bare specifier "preact"; a browser needs a path (an import map
    would be an inline script, which the console's CSP forbids)."""
    if text.count('from"preact"') != 1:
        raise SystemExit('preact hooks: expected exactly one `from"preact"` to rewrite')
    return _drop_source_map(text.replace('from"preact"', 'from"./preact.mjs"'))


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of this version
    target: Path
    files: dict[str, str]  # path in the tarball -> file name in target
    rewrite: dict[str, Rewrite]  # file name in target -> how it is adapted


PINS = [
    Pin(
        "preact",
        "11.2.0",
        "sha512-/HfHI/7N84e6GrWBJ3J280z3mLaRJiDcSvj/A+y/4AbLnND/1UlGHe1sR6oYuTGwId0nP7dqDU9OnLxMPZ7xBg==",
        CONSOLE,
        {
            "package/dist/preact.mjs": "preact.mjs",
            "package/hooks/dist/hooks.mjs": "preact-hooks.mjs",
            "package/LICENSE": "preact.LICENSE.txt",
        },
        {"preact.mjs": _drop_source_map, "preact-hooks.mjs": _preact_hooks},
    ),
    Pin(
        "htm",
        "3.1.1",
        "sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ==",
        CONSOLE,
        {"package/dist/htm.mjs": "htm.mjs", "package/LICENSE": "htm.LICENSE.txt"},
        {},
    ),
    # For the charts of /stats/messages/series (SPEC §11), loaded only by the page
    # that draws them.
    Pin(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        CONSOLE,
        {
            "package/dist/uPlot.esm.js": "uplot.mjs",
            "package/dist/uPlot.min.css": "uplot.css",
            "package/LICENSE": "uplot.LICENSE.txt",
        },
        {},
    ),
    Pin(
        "swagger-ui-dist",
        "5.35.0",
        "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
        DOCS,
        {
            "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "package/swagger-ui.css": "swagger-ui.css",
            "package/LICENSE": "swagger-ui.LICENSE.txt",
            "package/NOTICE": "swagger-ui.NOTICE.txt",
            # The licences of what the bundle includes.
            "package/swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
        },
        {"swagger-ui.css": lambda t: re.sub(r"\n/\*# sourceMappingURL=\S+\s*\*/\s*$", "\n", t)},
    ),
]
MANIFEST = "VENDORED.json"


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def npm_pack(name: str, version: str, into: Path) -> Path:
    out = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
    )
    (packed,) = json.loads(out.stdout)
    return into / str(packed["filename"])


def fetch(pin: Pin, work: Path) -> dict[str, bytes]:
    tarball = npm_pack(pin.name, pin.version, work).read_bytes()
    if sri(tarball) != pin.integrity:
        raise SystemExit(f"{pin.name}@{pin.version}: the tarball does not match the pinned sha512")
    taken: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member, dest in pin.files.items():
            extracted = tar.extractfile(member)  # by name only: nothing else is unpacked
            if extracted is None:
                raise SystemExit(f"{pin.name}@{pin.version}: {member} is not a file")
            data = extracted.read()
            if dest in pin.rewrite:
                data = pin.rewrite[dest](data.decode("utf-8")).encode("utf-8")
            taken[dest] = data
    return taken


def write(pins: list[Pin]) -> None:
    manifests: dict[Path, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pin in pins:
            files = fetch(pin, Path(tmp))
            pin.target.mkdir(parents=True, exist_ok=True)
            for dest, data in files.items():
                (pin.target / dest).write_bytes(data)
            manifest = manifests.setdefault(pin.target, {})
            manifest[pin.name] = {
                "version": pin.version,
                "integrity": pin.integrity,
                "files": {d: hashlib.sha256(b).hexdigest() for d, b in sorted(files.items())},
            }
            print(f"{pin.name}@{pin.version}: {', '.join(sorted(files))}")
    for target, manifest in manifests.items():
        wanted = {MANIFEST} | {
            f for pin in pins if pin.target == target for f in pin.files.values()
        }
        for stale in target.iterdir():
            if stale.name not in wanted:
                stale.unlink()  # a file a former pin took
        (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def latest(pins: list[Pin]) -> None:
    for pin in pins:
        out = subprocess.run(
            ["npm", "view", pin.name, "version", "dist.integrity", "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(out.stdout)
        mark = "" if info["version"] == pin.version else "  <- newer"
        print(f"{pin.name}: pinned {pin.version}, latest {info['version']}{mark}")
        if mark:
            print(f"    {info['dist.integrity']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latest", action="store_true", help="compare pins with the registry")
    args = parser.parse_args()
    if args.latest:
        latest(PINS)
    else:
        write(PINS)


if __name__ == "__main__":
    main()
