"""agupshup: an asyncio client for the GupShup Stream and Group API."""

from agupshup import errors, models
from agupshup.checkpoint import (
    Checkpoint,
    Cursor,
    MemoryCheckpointStore,
    MergedCursor,
    RedisCheckpointStore,
    SQLiteCheckpointStore,
)
from agupshup.client import Client
from agupshup.clock import Clock, FakeClock, SystemClock
from agupshup.errors import *  # noqa: F403
from agupshup.models import *  # noqa: F403
from agupshup.polling import PollPolicy
from agupshup.retry import RetryPolicy
from agupshup.session import Credentials
from agupshup.streams import MergedStream, Stream

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "Client",
    "Clock",
    "Credentials",
    "Cursor",
    "FakeClock",
    "MemoryCheckpointStore",
    "MergedCursor",
    "MergedStream",
    "PollPolicy",
    "RedisCheckpointStore",
    "RetryPolicy",
    "SQLiteCheckpointStore",
    "Stream",
    "SystemClock",
    "errors",
    "models",
]
__all__ += errors.__all__ + models.__all__
