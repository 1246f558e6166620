"""The composition root: what runs in a tidings process, built from one ``Settings``.

``process.Runtime`` builds and starts the services of a role (API, delivery engine,
or both); ``serving`` runs ``tidings serve`` on granian, ``worker`` runs ``tidings
worker``, ``scrape`` serves metrics on their own address. Nothing below this package
builds a service it does not own.
"""

from tidings.runtime.process import Runtime

__all__ = ["Runtime"]
