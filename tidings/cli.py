"""The ``tidings`` command: serve, worker, init, migrate."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from tidings.config import Settings, SettingsError, load_settings
from tidings.logs import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", help="sqlite:///path.db or postgresql://... (TIDINGS_DATABASE_URL)"),
]


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
) -> None:
    """Run the API and the delivery engine in one process (HTTPS + HTTP/2 with TLS set)."""
    from tidings.serving import run

    run(_settings(host=host, port=port, database_url=database), engine=not no_engine)


@app.command()
def worker(database: DatabaseOpt = None) -> None:
    """Run the delivery engine alone, beside API nodes sharing one PostgreSQL."""
    from tidings.worker import run_worker

    asyncio.run(run_worker(_settings(database_url=database)))


@app.command()
def init(
    org: Annotated[str, typer.Option("--org", help="Name of the organization")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Create the database, an organization and an operator key; print the key once."""
    from tidings.bootstrap import create_organization
    from tidings.domain.errors import TidingsError
    from tidings.storage.store import Store

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
