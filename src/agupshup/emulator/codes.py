"""Error codes and their message texts, per method.

Rules this module enforces:

* Every ``msg`` the emulator sends is a text of the API reference with its placeholders (``%0``,
  ``%1``, ``%s``, ``%<ml>``) filled in; the reference's escaped quotes (``\\"%0\\"``) are sent as
  plain quotes. The few texts the reference leaves out (157, the second 127 tag) are marked below.
* A method's own text wins over the generic one: the same code means different things in
  different methods (1 is "range" in ``gupshup.getPublicStream`` and "token" in
  ``users.getJoinedGroups``).
* Handlers refuse a call by raising :class:`ApiError`; it carries one or more ``(code, msg)``
  pairs, already filled in.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ApiError", "Failure", "fill", "text"]

Failure = tuple[int, str]

_GENERIC: dict[int, str] = {
    102: 'The specified response format "%0" is not supported.',
    107: 'The specified version "%0" is invalid. Please specify version as "1.0" or leave the '
    "field blank.",
    108: 'The specified method "%0" is not valid GupShup api.',
    109: 'The parameter "%0" is required. Please resend request.',
    110: 'The parameter "%0" is invalid. The parameter should be of type "%1".',
    111: 'The parameter "%0" is invalid. The parameter should be within a value of "%1".',
    113: "The API call has not been executed since you have exceeded the throttle %0 limit of "
    '"%1".',
    129: "There was an internal error and your last action could not be performed. Please "
    "resubmit your last action after some time.",
}

_RANGE_15 = (
    "The specified range is invalid. Range can be a positive integer with maximum value of 15."
)
_GROUP_INVALID = "The specified group name is invalid."
_PRIVATE_112 = (
    'You are trying to access a private group. The method "%0" is only supported for public groups.'
)
_TOKEN_INVALID = "The token string specified is invalid."
_BAD_GROUP_PARAM = (
    'You have provided an invalid value for the parameter "group". Please resend request with '
    "the correct value of the parameter."
)
_BAD_GROUP_NAME = (
    "You have provided an invalid value for group name parameter. Please resend request with "
    "the correct value of the parameter."
)
_NON_ASCII = (
    "This message contains non-ASCII characters. Please remove those and resubmit the message."
)
_TOO_LONG = (
    "This message exceeds the permitted length of %0 characters. Please reduce the length of "
    "the message to within allowed limits and resubmit."
)
_PRIVATE_155 = "This group is private and only group owner can request this information."
_VERSION_LONG = (
    'You have provided an invalid value for the parameter "version". Please specify version as '
    '"1.0" or leave the field blank.'
)
_RANGE_30 = "range parameter should be between 1 and %0."
_FROM_150 = "from parameter should be 0 or positive integer"

_PER_METHOD: dict[str, dict[int, str]] = {
    "gupshup.getpublicstream": {1: _RANGE_15},
    "groups.getmessage": {2: _GROUP_INVALID},
    "groups.getstream": {2: _GROUP_INVALID, 3: _RANGE_15, 112: _PRIVATE_112},
    "groups.getinfo": {2: _GROUP_INVALID, 112: _PRIVATE_112},
    "groups.subscribegrouptoken": {
        1: _GROUP_INVALID,
        2: "The specified phone number is invalid.",
        3: "Due to privacy policy of the parties involved the current action is deemed invalid.",
        5: "The specified phone number has 5 unconfirmed actions. All actions to %0 have now "
        "been disabled pending further confirmation.",
        6: _TOKEN_INVALID,
        7: "The confirmation string specified is invalid.",
        8: 'The user "%0" has already subscribed to group "%1".',
        9: "There have been more that 5 attempts. This action has now been disabled.",
        10: "Subscription action is only supported for public groups.",
    },
    "users.getchallenge": {},
    "users.login": {
        2: 'You have provided an invalid value for the parameter "phone". Please resend request '
        "with the correct value of the parameter.",
        120: 'You have provided an invalid value for the parameter "country code". Please resend '
        "request with the correct value of the parameter.",
        121: "Authentication unsuccessful. This is possibly because of an incorrect password.",
        122: "The mobile phone number provided has not been activated yet. Please visit "
        "http://www.smsgupshup.com to activate the mobile phone.",
        123: "The mobile phone number provided has been disabled. Please email "
        "'support@smsgupshup.com' to reactivate the mobile phone.",
    },
    "groups.postmessage": {
        1: _BAD_GROUP_PARAM,
        6: _TOKEN_INVALID,
        124: "This SMS GupShup group has been disabled. Please email 'support@smsgupshup.com' "
        "to re-enable the group.",
        125: _NON_ASCII,
        126: _TOO_LONG,
        127: "You have hit a throttle limit. Please see other accompanying messages for details.",
        128: "The last message you submitted is a duplicate of your earlier message. You cannot "
        "send duplicate messages.",
    },
    "users.getmygroups": {6: "The token string specified is not valid.", 107: _VERSION_LONG},
    "users.logout": {107: _VERSION_LONG},
    "users.getjoinedgroups": {1: _TOKEN_INVALID, 131: _RANGE_30, 150: _FROM_150},
    "users.getjoinedgroupsstream": {1: _TOKEN_INVALID, 131: _RANGE_30, 150: _FROM_150},
    "groups.postreply": {
        1: _BAD_GROUP_NAME,
        6: _TOKEN_INVALID,
        124: "This SMS GupShup group has been disabled. Please email 'support@smsgupshup.com' "
        "to reenable the group.",
        125: _NON_ASCII,
        126: _TOO_LONG,
        155: _PRIVATE_155,
        156: "The reply message can not be empty.",
        # Not in the reference (it only describes 157): this project's text.
        157: 'Its a partial success. The reply was not delivered to group "%0": %1',
    },
    "groups.getreplies": {
        1: _BAD_GROUP_NAME,
        131: _RANGE_30,
        150: _FROM_150,
        153: _TOKEN_INVALID,
        154: "Only group owner can request this information.",
        155: _PRIVATE_155,
    },
    "groups.invitefriends": {
        1: _BAD_GROUP_PARAM,
        6: _TOKEN_INVALID,
        161: "One or more phone numbers are not valid.",
        162: "Invites have been sent to some of your friends. Some phone numbers could not be "
        "invited.",
        163: "Invite cannot be sent to your friends.",
    },
}

#: The login section words its 109 texts per parameter.
_LOGIN_109 = (
    'You have not provided the parameter "%0", which is a required parameter. Please resend '
    "request with the parameter in place."
)
_LOGIN_109_NAMES = {"phone": "phone number", "countrycode": "country code"}

#: Not in the reference: the second ``error`` tag of a 127 names the throttle that was hit.
POSTER_THROTTLE_DETAIL = "You have exceeded the posting limit of %0 messages per %1 seconds."


def fill(template: str, *args: object) -> str:
    """Fill ``%0``, ``%1`` … in ``template`` with ``args``."""
    out = template
    for i in reversed(range(len(args))):
        out = out.replace(f"%{i}", str(args[i]))
    return out


def text(method: str, code: int, *args: object) -> str:
    """The message text of ``code`` in ``method`` (lower-case name), filled in with ``args``."""
    if code == 109 and method == "users.login" and args:
        name = _LOGIN_109_NAMES.get(str(args[0]).lower())
        if name is not None:
            return fill(_LOGIN_109, name)
    template = _PER_METHOD.get(method, {}).get(code) or _GENERIC.get(code)
    if template is None:
        raise KeyError(f"no text for code {code} in {method}")
    return fill(template, *args)


class ApiError(Exception):
    """The call is refused with these ``error`` tags (codes and filled-in texts)."""

    def __init__(self, failures: Iterable[Failure]) -> None:
        self.failures: list[Failure] = list(failures)
        super().__init__(", ".join(str(code) for code, _ in self.failures))

    @classmethod
    def of(cls, method: str, code: int, *args: object) -> ApiError:
        """One ``error`` tag: ``code`` with ``method``'s text."""
        return cls([(code, text(method, code, *args))])
