"""The sans-I/O wire codec: build requests, decode responses. Nothing here touches a socket.

``from agupshup import wire``; ``wire.get_stream("jumpy")`` is a :class:`Request`;
``wire.decode(request, body, content_type)`` is a :class:`Response` or a typed exception.
Each builder builds one request of one API call and is named after it, in snake case
(``users.getJoinedGroupsStream`` → ``get_joined_groups_stream``): one page, never the walk
over every page that the client's iterators (``client.joined_groups_stream()``) do.
"""

import warnings
from typing import Any

from agupshup.wire.envelope import Body, decode_json, decode_xml
from agupshup.wire.methods import (
    COMMON,
    LOGIN,
    METHODS,
    Format,
    Lane,
    MethodSpec,
    Request,
    Response,
    compute_rand,
    confirm_subscription,
    decode,
    get_challenge,
    get_info,
    get_joined_groups,
    get_joined_groups_stream,
    get_message,
    get_my_groups,
    get_public_stream,
    get_replies,
    get_stream,
    invite_friends,
    login,
    logout,
    post_message,
    post_reply,
    subscribe,
)

__all__ = [
    "COMMON",
    "LOGIN",
    "METHODS",
    "Body",
    "Format",
    "Lane",
    "MethodSpec",
    "Request",
    "Response",
    "compute_rand",
    "confirm_subscription",
    "decode",
    "decode_json",
    "decode_xml",
    "get_challenge",
    "get_info",
    "get_joined_groups",
    "get_joined_groups_stream",
    "get_message",
    "get_my_groups",
    "get_public_stream",
    "get_replies",
    "get_stream",
    "invite_friends",
    "login",
    "logout",
    "post_message",
    "post_reply",
    "subscribe",
]

#: Builder names before issue 25, which read like the client's iterators → the names now.
_RENAMED = {
    "public_stream": "get_public_stream",
    "joined_groups_stream": "get_joined_groups_stream",
    "my_groups": "get_my_groups",
    "joined_groups": "get_joined_groups",
}


def __getattr__(name: str) -> Any:
    new = _RENAMED.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"wire.{name} is deprecated; use wire.{new} (it builds one page)",
                  DeprecationWarning, stacklevel=2)
    return globals()[new]
