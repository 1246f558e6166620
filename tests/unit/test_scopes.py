"""Scope rules (SPEC §2): kind, access, targets by own id or queue id."""

from __future__ import annotations

import typing

from tidings.api import wire
from tidings.domain.models import Scope
from tidings.domain.scopes import (
    PROTECTED,
    RESOURCES,
    allows,
    default_scopes,
    operator_scopes,
    visible_targets,
)


def test_write_includes_read_and_read_is_not_write() -> None:
    write = [Scope("queues", "write", ("*",))]
    read = [Scope("queues", "read", ("*",))]
    assert allows(write, "queues", "read", ["q1"])
    assert allows(read, "queues", "read", ["q1"])
    assert not allows(read, "queues", "write", ["q1"])
    assert not allows(write, "messages", "read", ["q1"])


def test_targets_hold_the_resource_or_its_queue() -> None:
    scopes = [Scope("messages", "write", ("q1", "m9"))]
    assert allows(scopes, "messages", "write", ["q1", "m5"])  # by queue
    assert allows(scopes, "messages", "write", ["q2", "m9"])  # by own id
    assert not allows(scopes, "messages", "write", ["q2", "m5"])


def test_collection_reads_filter_and_collection_writes_need_star() -> None:
    limited = [Scope("queues", "write", ("q1",))]
    assert allows(limited, "queues", "read")  # a list, cut down to q1
    assert not allows(limited, "queues", "write")  # a new queue would fall outside
    assert allows([Scope("queues", "write", ("*",))], "queues", "write")
    assert not allows([], "queues", "read")
    assert visible_targets(limited, "queues") == ["q1"]
    assert visible_targets([*limited, Scope("queues", "read", ("*",))], "queues") is None
    assert visible_targets(limited, "messages") == []


def test_default_and_operator_scopes() -> None:
    assert {s.resource for s in default_scopes()} == set(RESOURCES) - PROTECTED
    assert {s.resource for s in operator_scopes()} == set(RESOURCES)
    assert all(s.access == "write" and s.targets == ("*",) for s in operator_scopes())


def test_wire_resources_match_the_domain() -> None:
    assert set(typing.get_args(wire.Resource)) == set(RESOURCES)
