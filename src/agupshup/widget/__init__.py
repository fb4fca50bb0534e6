"""The featured widget: customize, preview and embed a group's latest messages.

``python -m agupshup.widget --base-url URL`` (or ``agupshup widget``) serves it; see
:mod:`agupshup.widget.app` for the routes and the rules it keeps.
"""

from agupshup.widget.app import Widget, WidgetClient, make_app, serve, serving
from agupshup.widget.cache import Busy, TTLCache
from agupshup.widget.templates import BAD_NAME, NOT_FOUND, embed_snippet, normalize_color

__all__ = [
    "BAD_NAME",
    "NOT_FOUND",
    "Busy",
    "TTLCache",
    "Widget",
    "WidgetClient",
    "embed_snippet",
    "make_app",
    "normalize_color",
    "serve",
    "serving",
]
