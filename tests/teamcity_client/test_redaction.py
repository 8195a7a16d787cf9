"""Redaction (issue 10, defect 9): no secret, nor any 8+ character piece of one, reaches an
exception text, however the server quotes it back.

A real loopback server (``ScriptedServer``) answers errors that quote the request's value back:
at offset 290 of the server's message, across the 300-character cut (the old layer cut first
and redacted after, so the first 10 characters survived), and JSON-, backslash-, URL- or
HTML-escaped (the old layer replaced only the plain value). The TeamCity parameter sink did
not register the value it pushed, so an error quoting it showed it whole.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from rotator.errors import TargetError
from rotator.sinks.teamcity_parameters import TeamCityParameterSink
from rotator.spec import PushTarget, TeamCitySettings
from rotator.targets.http import BearerAuth, HttpClient, redact
from rotator.targets.teamcity import TeamCityClient
from tests.fixtures.leaks import register_secret
from tests.teamcity_client.loopback import Reply, Seen

ADMIN = "adm-redaction-suite-4d2c9e7b1a0f3e5d"
SECRET = "Zq8/\"tok\\en é+v4 &a=1%2F'-Rk3mW9pXc7Lb2Nf"
"""A value with every character servers like to escape, and long plain runs on both sides."""
PUSHED = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiIxIn0.redaction-pushed-value-7Hq2Lx9"
for _value in (ADMIN, SECRET, PUSHED):
    register_secret(_value)

PREFIX = "jetbrains.buildServer.server.rest.errors.BadRequestException: Wrong parameter value "
CUT = 300  # where the HTTP layer shortens the server's message


def fragments(text: str, size: int = 8) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def assert_no_trace(message: str, *forms: str) -> None:
    """Neither a form of the secret nor any 8-character piece of one is in ``message``."""
    for form in forms:
        assert form not in message
        leaked = sorted(f for f in fragments(form) if f in message)
        assert not leaked, f"{len(leaked)} piece(s) of a secret survived: {message!r}"


def error_body(quoted: str, offset: int = 290) -> str:
    """TeamCity's text/plain error with the quoted value starting at ``offset`` of the
    ``Details:`` message (the part the HTTP layer shows, cut at 300)."""
    pad = "n" * (offset - len(PREFIX) - 3)
    details = f"{PREFIX}({pad}) {quoted} is not allowed for parameters of type password{'.' * 200}"
    assert details.index(quoted) == offset
    return (
        "Responding with error, status code: 400 (Bad Request).\n"
        f"Details: {details}\n"
        "Invalid request. Please check the request URL and data are correct.\n"
    )


def quoting(render: Callable[[str], str], offset: int = 290) -> Callable[[Seen], str]:
    """A server answer quoting the request's ``value`` back, rendered one way."""

    def answer(seen: Seen) -> str:
        return error_body(render(json.loads(seen.body)["value"]), offset)

    return answer


RENDERINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda s: s,
    "json": lambda s: json.dumps(s)[1:-1],
    "json-unicode": lambda s: json.dumps(s, ensure_ascii=True)[1:-1],
    "json-raw-utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json-slash": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "json-in-json": lambda s: json.dumps(json.dumps(s))[1:-1],
    "backslashed": lambda s: re.sub(r"([^A-Za-z0-9])", r"\\\1", s),
    "python-repr": repr,
    "url": lambda s: quote(s, safe=""),
    "url-path": quote,
    "url-lower": lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(s)),
    "url-plus": quote_plus,
    "url-twice": lambda s: quote(quote(s, safe=""), safe=""),
    "html": html.escape,
    "html-numeric": lambda s: "".join(c if c.isalnum() else f"&#{ord(c)};" for c in s),
    "unicode-escapes": lambda s: "".join(c if c.isalnum() else f"\\u{ord(c):04X}" for c in s),
}


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_an_escaped_secret_across_the_cut_is_redacted(scripted, name):
    render = RENDERINGS[name]
    # At 287: a rendering may open with a quote or two (repr, JSON in JSON), and the secret
    # inside must still start early enough for its marker to fit before the cut at 300.
    scripted.on("POST", "/echo", Reply(400, quoting(render, 287), "text/plain"))
    http = HttpClient(scripted.url, target="TeamCity", retries=0)
    http.add_secret(SECRET)
    with pytest.raises(TargetError) as err:
        http.request("POST", "/echo", json={"value": SECRET})
    text = str(err.value)
    assert "TeamCity answered 400 to POST /echo: " + PREFIX in text  # the server was quoted
    assert "<redacted>" in text  # where the value was, redacted whole, before the cut
    assert_no_trace(text, SECRET, render(SECRET))


@pytest.mark.parametrize("offset", [100, 250, 289, 290, 291, 295, 299, 305])
def test_the_cut_never_splits_a_secret_or_its_marker(scripted, offset):
    scripted.on("POST", "/echo", Reply(400, quoting(lambda s: s, offset), "text/plain"))
    http = HttpClient(scripted.url, target="TeamCity", retries=0)
    http.add_secret(SECRET)
    with pytest.raises(TargetError) as err:
        http.request("POST", "/echo", json={"value": SECRET})
    said = str(err.value).split(": ", 1)[1]
    assert_no_trace(said, SECRET)
    assert said.endswith(" [...]")  # the message was long: shortened, and says so
    assert len(said) <= CUT + len(" [...]")
    assert "<redac" not in said.replace("<redacted>", "")  # no half marker
    if offset + len("<redacted>") <= CUT:
        assert "<redacted>" in said


def test_the_pushed_value_is_registered_before_it_is_sent(scripted):
    """The sink's value, quoted back by TeamCity's 400 across the cut, never shows."""
    project, param = "/app/rest/projects/id:DataPipelines", "env.AIRFLOW_API_TOKEN"
    scripted.on("GET", project, Reply(200, '{"readOnlyUI": {"value": false}}'))
    scripted.on(
        "GET",
        f"{project}/parameters/{param}",
        Reply(404, f"Details: No parameter with name '{param}' is found.\n", "text/plain"),
    )
    scripted.on("PUT", f"{project}/parameters/{param}", Reply(400, quoting(str), "text/plain"))
    settings = TeamCitySettings(url=scripted.url)
    sink = TeamCityParameterSink(settings, TeamCityClient(scripted.url, ADMIN, retries=0))
    with pytest.raises(TargetError) as err:
        sink.push(PushTarget(param, "DataPipelines"), PUSHED)
    text = str(err.value)
    assert f"answered 400 to PUT {project}/parameters/{param}" in text
    assert json.loads(scripted.requests[-1].body)["value"] == PUSHED  # it was sent, then quoted
    assert "<redacted>" in text
    assert_no_trace(text, PUSHED, ADMIN)


def test_a_bearer_token_quoted_in_a_401_is_redacted(scripted):
    scripted.on(
        "GET",
        "/app/rest/server",
        Reply(
            401, f"Details: Invalid token {json.dumps(ADMIN)} for /app/rest/server\n", "text/plain"
        ),
    )
    with pytest.raises(TargetError) as err:
        TeamCityClient(scripted.url, ADMIN, retries=0).server()
    assert "<redacted>" in str(err.value)
    assert_no_trace(str(err.value), ADMIN)


def test_airflow_validation_errors_never_show_the_request_they_quote(scripted):
    """FastAPI's 422 ``detail`` is a list whose ``input`` echoes the body: only ``msg`` shows."""
    detail = [
        {
            "type": "string_too_short",
            "loc": ["body", "password"],
            "msg": "String should have at least 99 characters",
            "input": SECRET,
            "ctx": {"min_length": 99},
        }
    ]
    scripted.on("PATCH", "/users/bot", Reply(422, json.dumps({"detail": detail})))
    http = HttpClient(scripted.url, target="Airflow", retries=0)
    with pytest.raises(TargetError) as err:  # even a value nobody registered stays out
        http.request("PATCH", "/users/bot", json={"password": SECRET})
    text = str(err.value)
    assert text == (
        "Airflow answered 422 to PATCH /users/bot: String should have at least 99 characters"
    )


def test_a_json_detail_quoting_the_secret_is_redacted(scripted):
    scripted.on(
        "POST",
        "/auth/token",
        Reply(401, lambda seen: json.dumps({"detail": f"bad login {seen.body.decode()}"})),
    )
    http = HttpClient(scripted.url, target="Airflow", retries=0)
    http.add_secret(SECRET)
    with pytest.raises(TargetError) as err:
        http.request("POST", "/auth/token", json={"username": "u", "password": SECRET})
    assert "<redacted>" in str(err.value)
    assert_no_trace(str(err.value), SECRET, json.dumps(SECRET))


def test_a_login_page_title_is_redacted_too(scripted):
    page = f"<html><head><title>Welcome {html.escape(SECRET)}</title></head></html>"
    scripted.on("GET", "/app/rest/server", Reply(200, page, "text/html"))
    http = HttpClient(scripted.url, target="TeamCity", auth=BearerAuth(ADMIN), retries=0)
    http.add_secret(SECRET)
    with pytest.raises(TargetError) as err:
        http.request("GET", "/app/rest/server")
    assert "Welcome <redacted>" in str(err.value)
    assert_no_trace(str(err.value), SECRET)


def test_redact_replaces_mixed_forms_and_the_longest_secret_first():
    inner, outer = "abcd-1234/xy", "prefix-abcd-1234/xy-suffix"
    mixed = "abcd-1234%2Fxy and abcd-1234\\/xy and prefix-abcd-1234/xy-suffix"
    assert redact(mixed, [inner, outer]) == "<redacted> and <redacted> and <redacted>"
    assert redact("abc is short", ["abc"]) == "abc is short"  # too short to be told apart
    assert redact("nothing here", [None, ""]) == "nothing here"
