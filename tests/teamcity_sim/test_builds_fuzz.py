"""Whatever a client sends to the build and discovery endpoints, the simulator answers with a
contract status, never a 500: random paths, locators, ``?fields=`` specs and bodies."""

from __future__ import annotations

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = st.sampled_from(
    [
        "/app/rest/builds",
        "/app/rest/builds/{x}",
        "/app/rest/builds/{x}/tags",
        "/app/rest/buildQueue",
        "/app/rest/buildQueue/{x}",
        "/app/rest/server/{x}",
        "/app/rest/users",
        "/app/rest/projects",
        "/app/rest/projects/{x}",
        "/app/rest/projects/{x}/buildTypes",
        "/app/rest/buildTypes",
        "/app/rest/buildTypes/{x}",
        "/httpAuth/app/rest/builds/{x}",
        "/guestAuth/app/rest/builds",
    ]
)
WORD = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#&"), max_size=12
)
DIMENSION = st.sampled_from(
    [
        "id",
        "buildType",
        "tag",
        "state",
        "branch",
        "property",
        "defaultFilter",
        "count",
        "start",
        "lookupLimit",
        "canceled",
        "status",
        "user",
        "taskId",
        "name",
        "x",
    ]
)
VALUE = st.one_of(
    WORD,
    st.sampled_from(
        [
            "1",
            "²",
            "-3",
            "any",
            "queued",
            "(queued:true)",
            "(default:any)",
            "(id:DataPipelines_Publish)",
            "(name:x,value:y)",
            "(",
            ")",
            "((a)",
        ]
    ),
)
LOCATOR = st.one_of(
    WORD,
    st.lists(st.tuples(DIMENSION, VALUE), max_size=4).map(
        lambda dims: ",".join(f"{d}:{v}" for d, v in dims)
    ),
)
FIELDS = st.one_of(st.none(), WORD, st.sampled_from(["id,(", "build(id", "a)", "$long", "*"]))
BODIES = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "buildType",
                        "buildTypeId",
                        "id",
                        "comment",
                        "text",
                        "tags",
                        "tag",
                        "name",
                        "properties",
                        "property",
                        "value",
                        "readdIntoQueue",
                        "branchName",
                        "personal",
                        "triggeringOptions",
                        "queueAtTop",
                    ]
                ),
                c,
                max_size=4,
            )
        ),
        max_leaves=10,
    ).map(lambda v: requests.compat.json.dumps(v).encode()),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=PATHS,
    segment=LOCATOR,
    query=LOCATOR,
    fields=FIELDS,
    body=BODIES,
    ctype=st.sampled_from(["application/json", "application/xml", "text/plain", ""]),
    accept=st.sampled_from(["application/json", "application/xml", "text/plain", "*/*"]),
)
def test_no_build_request_makes_the_simulator_fail(
    _teamcity_server,
    teamcity_admin_token,
    method,
    path,
    segment,
    query,
    fields,
    body,
    ctype,
    accept,
):
    headers = {"Authorization": f"Bearer {teamcity_admin_token}", "Accept": accept}
    if ctype:
        headers["Content-Type"] = ctype
    quoted = requests.utils.quote(segment or "x", safe=":(),")
    params = {"locator": query}
    if fields is not None:
        params["fields"] = fields
    response = requests.request(
        method,
        _teamcity_server.url + path.replace("{x}", quoted),
        headers=headers,
        params=params,
        data=body,
        timeout=10,
    )
    assert response.status_code in {200, 204, 400, 401, 403, 404, 405, 406, 415}, (
        response.status_code,
        response.text[:300],
    )
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "Traceback" not in response.text
