"""Malformed answers from a target (issue 10, defect 7): each is ``TargetMalformed``, inside the
error tree, naming target, method, path, status and content type, never quoting the body.

Against a real loopback server (``ScriptedServer``): an SSO login page with 200, truncated
JSON, a token without ``value``, a date in another format, an array for an object. Before the
fix these escaped as ``JSONDecodeError``/``KeyError``/``ValueError``/``AttributeError`` (not
``RotatorError``), which stopped ``rotate --all`` and the daemon; an HTML 200 to a ``DELETE`` or
to the verify call was taken as success.
"""

from __future__ import annotations

import base64
import json

import pytest

from rotator.errors import RotatorError, TargetError, TargetMalformed
from rotator.issuers.teamcity import TeamCityTokenIssuer
from rotator.sinks.teamcity_parameters import TeamCityParameterSink
from rotator.spec import AirflowSettings, PushTarget, TeamCitySettings
from rotator.targets.airflow_api import AirflowApi, claim_time, jwt_claims
from rotator.targets.teamcity import TeamCityClient, parse_tc_date
from tests.fixtures.leaks import register_secret
from tests.teamcity_client.loopback import LOGIN_PAGE, Reply, ScriptedServer

ADMIN = "adm-malformed-answers-0123456789abcdef"
VALUE = "tok-malformed-answers-value-9f8e7d6c5b4a"
register_secret(ADMIN)
register_secret(VALUE)

TOKENS = "/app/rest/users/airflow-bot/tokens"
HTML = "text/html;charset=UTF-8"


def client(server: ScriptedServer, retries: int = 2) -> TeamCityClient:
    return TeamCityClient(server.url, ADMIN, timeout=2, retries=retries)


def fragments(secret: str, size: int = 8) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_names_the_call(text: str, method: str, path: str, status: int, media: str) -> None:
    assert f"TeamCity answered {status} to {method} {path} with {media}" in text, text


def created(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "rotator-t-1",
        "value": VALUE,
        "creationTime": "20260101T120000+0000",
        "expirationTime": "20270101T120000+0000",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


# -- HTML login pages ------------------------------------------------------------------------
def test_a_login_page_answering_a_token_create_is_malformed_and_not_retried(scripted):
    scripted.on("POST", TOKENS, Reply(200, LOGIN_PAGE, HTML))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).create_token("airflow-bot", "rotator-t-1")
    text = str(err.value)
    assert_names_the_call(text, "POST", TOKENS, 200, "text/html")
    assert "not JSON" in text and "a login page? check [teamcity] url" in text
    assert "Log in to TeamCity" in text  # the page's title tells the user which proxy it was
    assert "<form" not in text and "password" not in text  # never the page itself
    assert (err.value.status, err.value.method, err.value.path) == (200, "POST", TOKENS)
    assert err.value.content_type == "text/html"
    assert scripted.calls("POST", TOKENS) == 1


def test_a_login_page_is_never_a_successful_delete(scripted):
    """A ``DELETE`` expects no JSON, but an HTML 200 is the proxy's page, not a revocation."""
    scripted.on("DELETE", f"{TOKENS}/rotator-t-1", Reply(200, LOGIN_PAGE, HTML))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).delete_token("airflow-bot", "rotator-t-1")
    assert_names_the_call(str(err.value), "DELETE", f"{TOKENS}/rotator-t-1", 200, "text/html")


def test_a_login_page_never_verifies_a_new_token(scripted):
    scripted.on("GET", "/app/rest/server", Reply(200, LOGIN_PAGE, HTML))
    issuer = TeamCityTokenIssuer(TeamCitySettings(url=scripted.url, timeout=2, retries=0))
    with pytest.raises(TargetError) as err:
        issuer.verify(None, {"password": VALUE})  # type: ignore[arg-type]
    assert isinstance(err.value, TargetMalformed)
    assert VALUE not in str(err.value)


def test_a_redirect_to_a_login_page_says_so(scripted):
    scripted.on("GET", "/app/rest/server", Reply(302, "", None, {"Location": "/sso/login"}))
    scripted.on("GET", "/sso/login", Reply(200, LOGIN_PAGE, HTML))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).server()
    assert "after a redirect to /sso/login" in str(err.value)


def test_a_login_page_to_a_text_call_is_malformed_too(scripted):
    path = "/app/rest/projects/id:P/parameters/env.X/value"
    scripted.on("PUT", path, Reply(200, LOGIN_PAGE, HTML))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).put_parameter_value("projects", "P", "env.X", VALUE)
    assert "with text/html, not text/plain" in str(err.value)
    assert VALUE not in str(err.value)


def test_a_redirect_loop_is_malformed_not_a_crash(scripted):
    """Before: ``requests.TooManyRedirects`` escaped the error tree."""
    loop = Reply(302, "", None, {"Location": "/app/rest/server"})
    scripted.on("GET", "/app/rest/server", loop)
    with pytest.raises(TargetMalformed) as err:
        client(scripted).server()
    assert f"TeamCity redirected GET {scripted.url}/app/rest/server too many times" in str(
        err.value
    )
    assert "a login loop? check [teamcity] url" in str(err.value)


@pytest.mark.parametrize("tail", ["\r\nX-Injected: 1", "\n", " second-word", "-\u20ac"])
def test_a_credential_that_cannot_be_a_header_never_shows_in_the_error(scripted, tail):
    """Before: ``http.client`` raised ``ValueError('Invalid header value b"Bearer <token>..."')``
    (or ``UnicodeEncodeError``), outside the error tree and quoting the token."""
    broken = f"{ADMIN}{tail}"
    with pytest.raises(TargetError) as err:
        TeamCityClient(scripted.url, broken, retries=0).server()
    text = str(err.value)
    assert f"GET {scripted.url}/app/rest/server could not be sent to TeamCity" in text
    assert "(InvalidHeader)" in text
    assert ADMIN not in text and "X-Injected" not in text
    assert err.value.__context__ is None and err.value.__cause__ is None
    assert scripted.requests == []


# -- bodies that are not the JSON the contract promises --------------------------------------
def test_a_truncated_token_answer_never_shows_the_part_it_holds(scripted):
    whole = json.dumps(created())
    cut = whole[: whole.index(VALUE) + len(VALUE) // 2]  # the proxy gave up mid-value
    scripted.on("POST", TOKENS, Reply(200, cut))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).create_token("airflow-bot", "rotator-t-1")
    text = str(err.value)
    assert_names_the_call(text, "POST", TOKENS, 200, "application/json")
    assert "not valid JSON" in text and "truncated?" in text
    assert not [f for f in fragments(VALUE) if f in text]


def test_a_token_answer_without_value_is_malformed(scripted):
    scripted.on("POST", TOKENS, Reply(200, json.dumps(created(value=None))))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).create_token("airflow-bot", "rotator-t-1")
    assert_names_the_call(str(err.value), "POST", TOKENS, 200, "application/json")
    assert "no 'value'" in str(err.value)


@pytest.mark.parametrize("value", [12345, "", ["x"]])
def test_a_token_value_that_is_not_a_string_is_malformed(scripted, value):
    scripted.on("POST", TOKENS, Reply(200, json.dumps(created(value=value))))
    with pytest.raises(TargetMalformed, match="'value' that is not a non-empty string"):
        client(scripted).create_token("airflow-bot", "rotator-t-1")


def test_a_token_answer_without_name_is_malformed_and_never_shows_the_value(scripted):
    scripted.on("POST", TOKENS, Reply(200, json.dumps(created(name=None))))
    with pytest.raises(TargetMalformed, match="no 'name'") as err:
        client(scripted).create_token("airflow-bot", "rotator-t-1")
    assert VALUE not in str(err.value)


def test_a_date_in_another_format_is_malformed_and_named(scripted):
    body = json.dumps(created(expirationTime="2027-01-01T12:00:00Z"))
    scripted.on("POST", TOKENS, Reply(200, body))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).create_token("airflow-bot", "rotator-t-1")
    text = str(err.value)
    assert_names_the_call(text, "POST", TOKENS, 200, "application/json")
    assert "expirationTime '2027-01-01T12:00:00Z'" in text and "yyyyMMdd'T'HHmmssZ" in text
    assert VALUE not in text


def test_parse_tc_date_raises_inside_the_error_tree():
    assert parse_tc_date("20270101T120000+0000").year == 2027
    assert parse_tc_date(None) is None
    for bad in ("yesterday", "2027-01-01", 20270101):
        with pytest.raises(TargetMalformed):
            parse_tc_date(bad)


def test_an_array_where_an_object_belongs_is_malformed(scripted):
    scripted.on("GET", "/app/rest/server", Reply(200, '[{"version": "2025.1"}]'))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).server()
    text = str(err.value)
    assert_names_the_call(text, "GET", "/app/rest/server", 200, "application/json")
    assert "a JSON array where an object belongs" in text
    assert scripted.calls("GET", "/app/rest/server") == 1  # a bad answer is not retried


def test_a_server_time_in_another_format_is_malformed(scripted):
    scripted.on("GET", "/app/rest/server", Reply(200, '{"currentTime": "now"}'))
    with pytest.raises(TargetMalformed, match="currentTime 'now'"):
        client(scripted).server()


@pytest.mark.parametrize(
    ("body", "media", "problem"),
    [
        ("<token><name>x</name></token>", "application/xml", "with application/xml, not JSON"),
        ('{"name": "x"}', "text/plain", "with text/plain, not JSON"),
        ("", "application/json", "an empty body, not JSON"),
        (b'{"name": "\xff"}', "application/json", "not JSON (the body is not text)"),
        ('{"name": "x"} trailing', None, "with no content type, not valid JSON"),
    ],
)
def test_bodies_that_are_not_json_are_malformed(scripted, body, media, problem):
    scripted.on("GET", TOKENS, Reply(200, body, media))
    with pytest.raises(TargetMalformed) as err:
        client(scripted).list_tokens("airflow-bot")
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"count": 1, "token": {"name": "x"}}', "'token' that is not a list of objects"),
        ('{"count": 1, "token": [{"creationTime": "20260101T000000+0000"}]}', "no 'name'"),
        ('{"count": 1, "token": [{"name": "x", "creationTime": "1 Jan"}]}', "creationTime"),
    ],
)
def test_token_lists_are_checked(scripted, body, problem):
    scripted.on("GET", TOKENS, Reply(200, body))
    with pytest.raises(TargetMalformed, match=problem):
        client(scripted).list_tokens("airflow-bot")


def test_a_parameter_whose_type_is_not_an_object_fails_the_push_cleanly(scripted):
    """Before: ``AttributeError: 'str' object has no attribute 'get'`` out of the sink."""
    scripted.on("GET", "/app/rest/projects/id:P", Reply(200, '{"readOnlyUI": {"value": false}}'))
    scripted.on(
        "GET",
        "/app/rest/projects/id:P/parameters/env.X",
        Reply(200, '{"name": "env.X", "type": "password"}'),
    )
    sink = TeamCityParameterSink(TeamCitySettings(url=scripted.url), client(scripted))
    with pytest.raises(TargetMalformed, match="'type' that is not an object") as err:
        sink.push(PushTarget("env.X", "P"), VALUE)
    assert VALUE not in str(err.value)
    assert scripted.calls("PUT", "/app/rest/projects/id:P/parameters/env.X/value") == 0


def test_a_read_only_flag_that_is_not_an_object_is_malformed(scripted):
    scripted.on("GET", "/app/rest/projects/id:P", Reply(200, '{"readOnlyUI": "false"}'))
    with pytest.raises(TargetMalformed, match="'readOnlyUI' that is not an object"):
        client(scripted).read_only_ui("P")


def test_malformed_is_a_target_error_so_one_credential_fails_not_the_pass():
    assert issubclass(TargetMalformed, TargetError) and issubclass(TargetMalformed, RotatorError)


# -- Airflow ---------------------------------------------------------------------------------
def jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def airflow(server: ScriptedServer) -> AirflowApi:
    return AirflowApi(AirflowSettings(url=server.url, timeout=2, retries=0))


def test_airflow_login_answered_by_a_login_page_is_malformed(scripted):
    scripted.on("POST", "/auth/token", Reply(200, LOGIN_PAGE, HTML))
    with pytest.raises(TargetMalformed) as err:
        airflow(scripted).token("teamcity-bot", "pw-malformed-0123456789")
    text = str(err.value)
    assert "Airflow answered 200 to POST /auth/token with text/html, not JSON" in text
    assert "check [airflow] url" in text and "pw-malformed" not in text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"token_type": "bearer"}', "no 'access_token'"),
        ('{"access_token": 42}', "an 'access_token' that is not a string"),
        ('{"access_token": "eyJ', "not valid JSON"),
        ('["eyJhbGciOi"]', "a JSON array where an object belongs"),
    ],
)
def test_airflow_token_answers_are_checked(scripted, body, problem):
    scripted.on("POST", "/auth/token", Reply(201, body))
    with pytest.raises(TargetMalformed, match=problem):
        airflow(scripted).token("teamcity-bot", "pw-malformed-0123456789")


def test_airflow_token_check_against_a_login_page_fails(scripted):
    scripted.on("GET", "/api/v2/dags", Reply(200, LOGIN_PAGE, HTML))
    token = jwt({"sub": "1", "exp": 4102444800})
    register_secret(token)
    with pytest.raises(TargetMalformed) as err:
        airflow(scripted).check_token(token)
    assert token not in str(err.value)


def test_jwt_claims_and_times_stay_in_the_error_tree():
    with pytest.raises(TargetMalformed, match="not a JWT"):
        jwt_claims("not-a-jwt")
    with pytest.raises(TargetMalformed, match="not a JSON object"):
        jwt_claims(jwt({"a": 1}).split(".")[0] + "." + base64.urlsafe_b64encode(b"[1]").decode())
    with pytest.raises(TargetMalformed, match="'exp' claim is not a time"):
        claim_time({"exp": 10**20}, "exp")
    with pytest.raises(TargetMalformed, match="'iat' claim is not a time"):
        claim_time({"iat": "yesterday"}, "iat")
    assert claim_time({}, "exp") is None
    assert claim_time({"exp": 4102444800}, "exp").year == 2100  # type: ignore[union-attr]
