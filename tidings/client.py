"""The typed client under its older name: ``from tidings.client import Client`` works.

The client is the ``tidings_client`` package (its own distribution, ``client/`` in the
repository, and part of this one); this module only re-exports its public names.
"""

from tidings_client import *  # noqa: F403
from tidings_client import __all__ as __all__
