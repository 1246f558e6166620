"""The ``tidings`` command: serve, worker, init, keys, migrate."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tidings.config import Settings, SettingsError, load_settings
from tidings.logs import configure_logging

if TYPE_CHECKING:
    from tidings.domain.models import ApiKey
    from tidings.storage.store import Store

T = TypeVar("T")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", help="sqlite:///path.db or postgresql://... (TIDINGS_DATABASE_URL)"),
]


def _preflight(settings: Settings) -> None:
    """Refuse to serve a database whose commits are not durable or whose file is damaged."""
    from tidings.storage.durability import ALLOW_VARIABLE, StartRefused, check_database

    try:
        accepted = asyncio.run(check_database(settings))
    except StartRefused as exc:
        typer.echo(f"tidings: {exc}", err=True)
        raise typer.Exit(2) from None
    for problem in accepted:
        typer.echo(f"tidings: WARNING: {problem} (allowed by {ALLOW_VARIABLE})", err=True)


def _settings(**overrides: Any) -> Settings:
    """Settings from env + flags; also configures logging, once, for this process."""
    try:
        settings = load_settings().with_overrides(**overrides)
    except SettingsError as exc:
        typer.echo(f"tidings: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, settings.log_level.upper())
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (TIDINGS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (TIDINGS_PORT)")] = None,
    database: DatabaseOpt = None,
    no_engine: Annotated[
        bool, typer.Option("--no-engine", help="API only: leave delivery to `tidings worker`s")
    ] = False,
    single_process: Annotated[
        bool,
        typer.Option(
            "--single-process", help="Run the delivery engine in the API's process (one core)"
        ),
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="API worker processes, 1 to 64 (TIDINGS_WORKERS)")
    ] = None,
) -> None:
    """Run the API and, in a supervised child process, the delivery engine (HTTPS +
    HTTP/2 with TLS set)."""
    from tidings.runtime.serving import EngineMode, run

    if no_engine and single_process:
        typer.echo("tidings: --no-engine and --single-process exclude each other", err=True)
        raise typer.Exit(2)
    settings = _settings(host=host, port=port, database_url=database, workers=workers)
    if single_process and settings.workers > 1:
        typer.echo(
            f"tidings: --single-process runs one process; it cannot have {settings.workers} "
            "API workers (--workers, TIDINGS_WORKERS)",
            err=True,
        )
        raise typer.Exit(2)
    _preflight(settings)
    mode = EngineMode.CHILD
    if no_engine:
        mode = EngineMode.NONE
    elif single_process:
        mode = EngineMode.IN_PROCESS
    run(settings, engine=mode)


@app.command()
def worker(database: DatabaseOpt = None) -> None:
    """Run the delivery engine alone, beside API nodes sharing one PostgreSQL."""
    import uvloop

    from tidings.runtime.worker import run_worker

    settings = _settings(database_url=database)
    _preflight(settings)
    uvloop.run(run_worker(settings))  # as the engine child of `serve` (runtime/child.py)


@app.command()
def init(
    org: Annotated[str, typer.Option("--org", help="Name of the organization")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Create the database, an organization and an operator key; print the key once."""
    import msgspec

    from tidings.api.wire import Name
    from tidings.bootstrap import create_organization
    from tidings.domain.errors import TidingsError
    from tidings.storage.store import Store

    try:  # the name rule of POST /api_clients (SPEC §3): 1 to 256 characters, no NUL
        msgspec.convert(org, Name)
        if "\x00" in org:
            raise msgspec.ValidationError("holds NUL")
    except msgspec.ValidationError:
        typer.echo("tidings: --org must be 1 to 256 characters, without NUL.", err=True)
        raise typer.Exit(2) from None
    settings = _settings(database_url=database)

    async def run() -> Any:
        store = await Store.open(settings.database_url)
        try:
            return await create_organization(store, org)
        finally:
            await store.close()

    try:
        created = asyncio.run(run())
    except TidingsError as exc:
        typer.echo(f"tidings: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        out = {
            "organization": {"id": created.organization.id, "name": created.organization.name},
            "api_key": created.key,
        }
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"Organization {created.organization.name!r} ({created.organization.id})")
        typer.echo(f"Operator API key (shown only once): {created.key}")


keys_app = typer.Typer(
    no_args_is_help=True, help="Operator keys, straight in the database (no API key needed)."
)
app.add_typer(keys_app, name="keys")


def _run_on_store(database: str | None, work: Callable[[Store], Awaitable[T]]) -> T:
    from tidings.domain.errors import TidingsError
    from tidings.storage.store import Store

    settings = _settings(database_url=database)

    async def run() -> T:
        store = await Store.open(settings.database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except TidingsError as exc:
        typer.echo(f"tidings: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option("--org", help="Name of the organization")] = "default",
    name: Annotated[str, typer.Option("--name", help="Name of the key")] = "operator",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Create an operator key (all scopes) in an organization; print it once."""
    from tidings.bootstrap import new_api_key
    from tidings.domain.errors import NotFound
    from tidings.domain.scopes import operator_scopes

    secret = new_api_key()

    async def work(store: Store) -> ApiKey:
        found = await store.organizations.get_by_name(org)
        if found is None:
            raise NotFound(f"No organization named {org!r}; create one with `tidings init`.")
        return await store.api_keys.create(found.id, secret, name, "enabled", operator_scopes())

    key = _run_on_store(database, work)
    if as_json:
        typer.echo(json.dumps({"id": key.id, "organization": org, "api_key": secret}))
    else:
        typer.echo(f"Operator API key {key.id} of {org!r} (shown only once): {secret}")


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    database: DatabaseOpt = None,
) -> None:
    """List keys (never the keys themselves: their first 3 characters)."""

    async def work(store: Store) -> list[tuple[str, ApiKey]]:
        return await store.api_keys.list_for_operator(org)

    rows = [
        {
            "id": k.id,
            "organization": org_name,
            "name": k.name or None,
            "status": k.status,
            "key": k.prefix,
            "operator": any(s.resource == "api_keys" for s in k.scopes),
            "last_used_at": k.last_used_at,
        }
        for org_name, k in _run_on_store(database, work)
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(
            f"{row['id']}  {row['organization']}  {row['status']:8}  {row['key']}...  "
            f"{'operator' if row['operator'] else '-':8}  {row['name'] or ''}"
        )


@keys_app.command("disable")
def keys_disable(
    key_id: Annotated[str, typer.Argument(help="Id of the key")],
    database: DatabaseOpt = None,
) -> None:
    """Disable a key (running nodes notice within a few seconds)."""

    async def work(store: Store) -> ApiKey:
        return await store.api_keys.set_status_for_operator(key_id, "disabled")

    key = _run_on_store(database, work)
    typer.echo(f"disabled key {key.id}")


@app.command()
def migrate(database: DatabaseOpt = None) -> None:
    """Create or upgrade the database schema to this version."""
    from tidings.storage.migrate import upgrade

    upgrade(_settings(database_url=database).database_url)
    typer.echo("database is up to date")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
