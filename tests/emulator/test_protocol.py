"""Transport rules of protocol.md §1: verbs, names, v, format, method, and the check order."""

from __future__ import annotations

import pytest

from agupshup.emulator.methods import METHODS

from .helpers import Api, leaves

DEFAULTS = {spec.name: spec.default_format for spec in METHODS.values()}
ALL_METHODS = sorted(DEFAULTS)


def ctype(fmt: str) -> str:
    return {"xml": "text/xml; charset=UTF-8", "json": "application/json; charset=UTF-8"}[fmt]


def test_there_are_fifteen_methods() -> None:
    assert len(METHODS) == 15


@pytest.mark.parametrize("method", ALL_METHODS)
async def test_default_format_and_both_formats(api: Api, method: str) -> None:
    resp = await api.call(method, v="1.0")
    assert resp.status == 200
    assert resp.content_type == ctype(DEFAULTS[method])
    for fmt in ("xml", "json", "XML", "Json", ""):
        resp = await api.call(method, fmt)
        expected = fmt.lower() or DEFAULTS[method]
        assert resp.content_type == ctype(expected)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_version_checks(api: Api, method: str, fmt: str) -> None:
    missing = await api.call(method, fmt, v=None)
    assert missing.errors == [(109, 'The parameter "v" is required. Please resend request.')]
    bad = await api.call(method, fmt, v="2.0")
    if method in ("users.getMyGroups", "users.logout"):
        expected = (
            'You have provided an invalid value for the parameter "version". Please '
            'specify version as "1.0" or leave the field blank.'
        )
    else:
        expected = (
            'The specified version "2.0" is invalid. Please specify version as "1.0" '
            "or leave the field blank."
        )
    assert bad.errors == [(107, expected)]
    assert bad.content_type == ctype(fmt)
    blank = await api.call(method, fmt, v="")
    assert not [e for e in blank.errors if e[0] == 107 or '"v"' in e[1]]


@pytest.mark.parametrize("method", ALL_METHODS)
async def test_bad_format_is_102_in_the_default_format(api: Api, method: str) -> None:
    resp = await api.call(method, "yaml")
    assert resp.errors == [(102, 'The specified response format "yaml" is not supported.')]
    assert resp.content_type == ctype(DEFAULTS[method])


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_unknown_and_missing_method(api: Api, fmt: str) -> None:
    unknown = await api.call("groups.nothing", fmt)
    assert unknown.errors == [
        (108, 'The specified method "groups.nothing" is not valid GupShup api.')
    ]
    assert unknown.content_type == ctype(fmt)
    missing = await api.call(None, fmt)
    assert missing.errors == [(109, 'The parameter "method" is required. Please resend request.')]
    assert api.emulator.calls["groups.nothing"] == 1
    assert api.emulator.calls[""] == 1


async def test_unknown_method_without_format_is_xml(api: Api) -> None:
    resp = await api.call("nope")
    assert resp.content_type == ctype("xml")


async def test_method_and_parameter_names_are_case_insensitive(api: Api) -> None:
    resp = await api.call("GROUPS.GETSTREAM", "json", GROUPNAME="jumpy", Range="2", FROM="1")
    assert [m["text"] for m in resp.tree["messages"]] == ["jumpy message 119", "jumpy message 118"]
    alias = await api.call("Groups.subscribeToken", "json", phone="9812345678", group="jumpy")
    assert alias.tree["status"] == "success"
    assert api.emulator.calls["groups.subscribegrouptoken"] == 1


async def test_group_and_groupname_are_aliases(api: Api) -> None:
    by_group = await api.call("groups.getInfo", "json", group="jumpy")
    by_name = await api.call("groups.getInfo", "json", groupName="jumpy")
    assert by_group.body == by_name.body
    token = api.emulator.issue_token("9999900000")
    posted = await api.call("groups.postMessage", "json", token=token, group="jumpy", text="hi")
    assert posted.tree["status"] == "success"


async def test_post_form_body_means_the_same_as_get(api: Api) -> None:
    get = await api.call("groups.getStream", "json", group="jumpy", range="3")
    post = await api.call("groups.getStream", "json", verb="POST", group="jumpy", range="3")
    assert get.body == post.body


async def test_check_order(api: Api) -> None:
    # method before v, v before format, format before parameters
    assert (await api.call("nope", "yaml", v="9")).code == 108
    assert (await api.call("groups.getStream", "yaml", v="9")).code == 107
    assert (await api.call("groups.getStream", "yaml")).code == 102
    # required before types before values
    assert (await api.call("groups.getStream", "json", range="x")).code == 109
    assert (
        await api.call("groups.getStream", "json", group="jumpy", range="x", **{"from": "-1"})
    ).code == 110
    assert (await api.call("groups.getStream", "json", group="nope", range="99")).code == 3
    # values before the token
    resp = await api.call(
        "groups.postMessage", "json", token="bogus", groupName="jumpy", text="h\u00e9llo"
    )
    assert resp.code == 125
    # the token before business rules
    resp = await api.call(
        "groups.postMessage", "json", token="bogus", groupName="cricket", text="hello"
    )
    assert resp.code == 6


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_every_leaf_is_a_string(api: Api, fmt: str) -> None:
    token = api.emulator.issue_token("9999900000")
    for method, params in [
        ("gupshup.getPublicStream", {}),
        ("groups.getInfo", {"group": "jumpy"}),
        ("users.getMyGroups", {"token": token}),
        ("groups.getReplies", {"groupName": "jumpy"}),
    ]:
        resp = await api.call(method, fmt, **params)
        if fmt == "json":
            assert all(isinstance(leaf, str) for leaf in leaves(resp.raw))
        assert resp.tree["status"] == "success"


async def test_json_and_xml_carry_the_same_tree(api: Api) -> None:
    token = api.emulator.issue_token("9999900000")
    for method, params in [
        ("gupshup.getPublicStream", {"range": "5", "skipAdult": "false"}),
        ("groups.getMessage", {"group": "cricket"}),
        ("groups.getStream", {"group": "jumpy", "range": "15"}),
        ("groups.getInfo", {"group": "cricket"}),
        ("users.getMyGroups", {"token": token}),
        ("users.getJoinedGroups", {"token": token}),
        ("users.getJoinedGroupsStream", {"token": token, "range": "3"}),
        ("groups.getReplies", {"groupName": "jumpy", "getAll": "true", "token": token}),
        ("groups.getStream", {"group": "nope"}),
    ]:
        as_json = await api.call(method, "json", **params)
        as_xml = await api.call(method, "xml", **params)
        assert as_json.tree == as_xml.tree, method


async def test_blank_v_is_version_one(api: Api) -> None:
    resp = await api.call("groups.getInfo", "json", v="", group="jumpy")
    assert resp.tree["status"] == "success"


async def test_unknown_paths_are_not_the_api(api: Api) -> None:
    async with api.session.get(api.server.base_url + "/GupshupAPI/other") as response:
        assert response.status == 404
