"""agupshup: an asyncio client for the GupShup Stream and Group API."""

from agupshup import errors, models
from agupshup.client import Client
from agupshup.clock import Clock, FakeClock, SystemClock
from agupshup.errors import *  # noqa: F403
from agupshup.models import *  # noqa: F403

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Clock",
    "FakeClock",
    "SystemClock",
    "errors",
    "models",
]
__all__ += errors.__all__ + models.__all__
