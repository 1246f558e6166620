"""Stand a PostgreSQL statement still at a chosen point, as a paused process would:
a trigger makes matching row updates wait for an advisory lock the test holds."""

from __future__ import annotations


def gate_trigger(name: str, table: str, when: str, key: int) -> tuple[str, str]:
    """``(create, drop)`` SQL for a trigger ``name`` on ``table``: every update whose
    rows match ``when`` (``OLD``/``NEW``) waits for advisory lock ``key``."""
    drop = f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();"
    create = f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({key});
    RETURN NEW;
END $$;
CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW
    WHEN ({when}) EXECUTE FUNCTION {name}();
"""
    return create, drop
