"""Whatever a client sends, the simulator answers with a contract status, never a 500."""

from __future__ import annotations

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = st.sampled_from(
    [
        "/app/rest/server",
        "/app/rest/users/{x}",
        "/app/rest/users/{x}/tokens",
        "/app/rest/users/admin/tokens/{x}",
        "/app/rest/projects/{x}",
        "/app/rest/projects/DataPipelines/parameters",
        "/app/rest/projects/DataPipelines/parameters/{x}",
        "/app/rest/projects/DataPipelines/parameters/{x}/value",
        "/app/rest/projects/DataPipelines/parameters/{x}/type",
        "/app/rest/buildTypes/{x}/parameters",
        "/app/rest/builds/{x}",
        "/app/rest/buildQueue",
        "/app/rest/projects/DataPipelines/versionedSettings/tokens",
    ]
)
SEGMENT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#"), max_size=30
).map(lambda s: requests.utils.quote(s, safe=":(),"))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: requests.compat.json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "name": JSON_VALUES,
            "value": JSON_VALUES,
            "type": JSON_VALUES,
            "expirationTime": JSON_VALUES,
            "permissionRestrictions": JSON_VALUES,
            "property": JSON_VALUES,
            "buildType": JSON_VALUES,
            "versionedSettingsToken": JSON_VALUES,
        }
    ).map(lambda v: requests.compat.json.dumps(v).encode()),
    st.text(max_size=200).map(lambda t: f"<token name='{t}'/>".encode()),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/xml", "text/plain", "text/xml", "image/png", ""]
)
ACCEPTS = st.sampled_from(
    ["application/json", "application/xml", "*/*", "text/plain", "image/gif", ""]
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=PATHS,
    segment=SEGMENT,
    body=BODIES,
    ctype=CONTENT_TYPES,
    accept=ACCEPTS,
    auth=st.sampled_from(["admin", "bad", "none", "garbage-basic"]),
)
def test_no_input_makes_the_simulator_fail(
    _teamcity_server, teamcity_admin_token, method, path, segment, body, ctype, accept, auth
):
    headers = {}
    if ctype:
        headers["Content-Type"] = ctype
    if accept:
        headers["Accept"] = accept
    headers["Authorization"] = {
        "admin": f"Bearer {teamcity_admin_token}",
        "bad": "Bearer not-a-token",
        "none": "",
        "garbage-basic": "Basic !!!",
    }[auth]
    if not headers["Authorization"]:
        del headers["Authorization"]
    url = _teamcity_server.url + path.replace("{x}", segment or "x")
    response = requests.request(method, url, headers=headers, data=body, timeout=10)
    assert response.status_code in {200, 204, 400, 401, 403, 404, 405, 406, 413, 415}, (
        response.status_code,
        response.text[:300],
    )
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("text/plain")
