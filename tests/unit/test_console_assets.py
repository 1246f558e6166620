"""The vendored libraries are exactly what scripts/vendor_console.py pins and fetched."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vendor_console", ROOT / "scripts/vendor_console.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_vendored_files_match_the_pins_and_their_manifest() -> None:
    script = _script()
    folders = {pin.target for pin in script.PINS}
    assert {f.relative_to(ROOT).as_posix() for f in folders} == {
        "tidings/web/console/vendor",
        "tidings/web/docs/vendor",
    }
    for folder in folders:
        manifest = json.loads((folder / script.MANIFEST).read_text())
        pins = [pin for pin in script.PINS if pin.target == folder]
        assert sorted(manifest) == sorted(pin.name for pin in pins)
        expected = {script.MANIFEST}
        for pin in pins:
            entry = manifest[pin.name]
            assert (entry["version"], entry["integrity"]) == (pin.version, pin.integrity)
            assert sorted(entry["files"]) == sorted(pin.files.values())
            assert any("LICENSE" in name for name in entry["files"]), pin.name
            for name, digest in entry["files"].items():
                data = (folder / name).read_bytes()
                assert hashlib.sha256(data).hexdigest() == digest, f"{name} was edited by hand"
            expected |= set(entry["files"])
        assert {f.name for f in folder.iterdir()} == expected  # nothing unaccounted for


def test_the_hooks_import_preact_by_path_not_by_bare_name() -> None:
    text = (ROOT / "tidings/web/console/vendor/preact-hooks.mjs").read_text()
    assert 'from"./preact.mjs"' in text and 'from"preact"' not in text
    assert "sourceMappingURL" not in text


def test_a_hooks_build_that_imports_differently_stops_the_refresh() -> None:
    import pytest

    with pytest.raises(SystemExit, match="rewrite"):
        _script()._preact_hooks('import{options as n}from "preact/x";')
