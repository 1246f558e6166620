"""The one shape of every list query: a tenant's rows, oldest first, one page at a time.

Each repository calls it for its own table; the SQL of a table still lives with the
repository that owns it (this only assembles ``WHERE``, ``LIMIT`` and the count).
"""

from __future__ import annotations

from collections.abc import Sequence

from tidings.domain.models import Page
from tidings.storage.database import Database, Row, id_list


async def fetch_page(
    db: Database,
    table: str,
    columns: str,
    org_id: str,
    page: Page,
    *,
    queue_id: str | None = None,
    within: Sequence[str] | None = None,
    within_queues: bool = False,
) -> tuple[list[Row], int]:
    """Rows of ``table`` for ``org_id`` (and ``queue_id``) ordered by id, and the total.

    ``within`` keeps only rows whose id (or, with ``within_queues``, queue id) is in
    it: the targets of a key limited to some ids.
    """
    where, args = "org_id = $1", [org_id]
    if queue_id is not None:
        where += " AND queue_id = $2"
        args.append(queue_id)
    if within is not None:
        if not within:
            return [], 0
        ids, value = id_list(db, len(args) + 1, within)
        where += f" AND (id {ids} OR queue_id {ids})" if within_queues else f" AND id {ids}"
        args.append(value)
    n = len(args)
    rows = await db.fetch(
        f"SELECT {columns} FROM {table} WHERE {where} ORDER BY id LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        page.per_page,
        page.offset,
    )
    count = f"SELECT count(*) FROM {table} WHERE {where}"
    return rows, await total_of(db, count, args, page, len(rows))


async def total_of(
    db: Database, count_sql: str, args: Sequence[object], page: Page, got: int
) -> int:
    """The total that goes with a page of ``got`` rows read just before. A short page
    is its own total (read in one snapshot: a count in another statement could see a
    row committed in between that the page does not show, e.g. ``total: 1`` and no
    item); a full page is counted, never below what the page shows; a page past the
    end (empty, not the first) is counted and shows nothing to keep the count above."""
    if got < page.per_page and (got > 0 or page.offset == 0):
        return page.offset + got
    count = int(await db.fetchval(count_sql, *args))
    return max(count, page.offset + got) if got else count
