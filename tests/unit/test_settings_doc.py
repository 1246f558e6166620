"""The settings reference in docs/operations.md is generated and current."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from tidings import config
from tidings.config_docs import SETTING_DOCS, undocumented

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_described() -> None:
    assert undocumented() == [], "describe new settings in tidings/config_docs.py"


def test_documented_variables_are_the_ones_read() -> None:
    source = inspect.getsource(config.load_settings)
    for name, (env, _text) in SETTING_DOCS.items():
        if env is not None:
            assert f'"{env}"' in source, f"{name}: load_settings never reads {env}"


def test_operations_doc_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + " (run scripts/settings_doc.py)"
