"""The one error the client raises for an answer that is not 2xx."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TidingsClientError(Exception):
    """An API error: the problem body's ``title``, ``status``, ``detail`` and ``errors``.

    Transport failures (refused, timed out) stay ``httpx`` exceptions: they are not
    answers, and retrying them is the caller's decision.
    """

    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        text = f"{self.status} {self.title}"
        if self.detail:
            text += f": {self.detail}"
        for error in self.errors:
            text += f"\n  {error.get('path')}: {error.get('message')}"
        return text
