"""tidings: a self-hosted event broker speaking the discue v1 REST API."""

__version__ = "0.1.0"
