"""What third-party TeamCity clients call first, over raw HTTP: the server and its fields,
users, projects, build configurations, and the ``/httpAuth/`` and ``/guestAuth/`` prefixes.
Also: the fault injection reaches the build endpoints.

Where the contract is silent the simulator follows the REST plugin's source; the tests say
which class.
"""

from __future__ import annotations

import base64

import pytest
import requests

JSON = {"Accept": "application/json"}


@pytest.fixture
def tc(teamcity_sim, teamcity_admin_token):
    class TC:
        root = teamcity_sim.url
        url = teamcity_sim.url + "/app/rest"
        admin = {"Authorization": f"Bearer {teamcity_admin_token}", **JSON}
        sim = teamcity_sim

        def get(self, path, headers=None, **kw):
            return requests.get(
                self.url + path,
                headers=headers if headers is not None else self.admin,
                timeout=5,
                **kw,
            )

        def text(self, path):
            headers = {**self.admin, "Accept": "text/plain"}
            return requests.get(self.url + path, headers=headers, timeout=5)

        def viewer(self):
            if self.sim.state.find_user("viewer") is None:
                self.sim.state.add_user("viewer", permissions={"DataPipelines": ["view_project"]})
            r = requests.post(
                self.url + "/users/viewer/tokens", headers=self.admin, json={"name": "t"}, timeout=5
            )
            return {"Authorization": f"Bearer {r.json()['value']}", **JSON}

    return TC()


def assert_error(response, status, message):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0].startswith(f"Responding with error, status code: {status} ")
    assert lines[1].startswith("Details: ") and lines[1].endswith(message), response.text


# -- /server/{field} (ServerRequest, Server.getFieldValue) -------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("version", "2025.07.1 (build 197398)"),
        ("versionMajor", "2025"),
        ("majorVersion", "2025"),
        ("buildNumber", "197398"),
        ("build", "197398"),
    ],
)
def test_server_fields_are_text(tc, field, expected):
    r = tc.text(f"/server/{field}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert r.text == expected


def test_server_url_field_and_unknown_field(tc):
    assert tc.text("/server/webUrl").text == tc.root
    # text/plain only: a client asking for JSON gets the server's 406
    assert tc.get("/server/version").status_code == 406
    assert_error(
        tc.text("/server/nope"),
        404,
        "Field 'nope' is not supported. Supported are: version, versionMajor, versionMinor, "
        "buildNumber, startTime, currentTime, internalId, role, artifactsUrl.",
    )


# -- users ---------------------------------------------------------------------------------


def test_users_list_for_administrators(tc):
    body = tc.get("/users").json()
    names = [u["username"] for u in body["user"]]
    assert body["count"] == len(names) and {"admin", "airflow-bot", "teamcity-bot"} <= set(names)
    assert set(body["user"][0]) == {"username", "name", "id", "href"}
    assert tc.get("/users?fields=count").json() == {"count": len(names)}


def test_users_list_needs_view_user_profile(tc):
    r = tc.get("/users", headers=tc.viewer())
    assert r.status_code == 403 and "Details:" in r.text


# -- projects ------------------------------------------------------------------------------


def test_projects_list_shows_what_the_caller_may_view(tc):
    ids = [p["id"] for p in tc.get("/projects").json()["project"]]
    assert ids == ["_Root", "DataPipelines", "DataPipelines_Vcs"]
    tc.sim.state.add_project("Secret", "Secret")
    viewer_ids = [p["id"] for p in tc.get("/projects", headers=tc.viewer()).json()["project"]]
    assert "Secret" not in viewer_ids and "DataPipelines" in viewer_ids
    item = tc.get("/projects").json()["project"][1]
    assert set(item) == {"id", "name", "parentProjectId", "href", "webUrl"}
    only = tc.get("/projects?locator=parentProject:(id:DataPipelines)").json()
    assert [p["id"] for p in only["project"]] == ["DataPipelines_Vcs"]


def test_a_project_carries_its_parameters_build_types_and_subprojects(tc):
    body = tc.get("/projects/DataPipelines").json()
    assert body["id"] == "DataPipelines" and body["parentProjectId"] == "_Root"
    assert body["parentProject"]["id"] == "_Root"
    assert body["readOnlyUI"] == {"value": False}
    types = [b["id"] for b in body["buildTypes"]["buildType"]]
    assert body["buildTypes"]["count"] == len(types) and "DataPipelines_Publish" in types
    params = {p["name"]: p for p in body["parameters"]["property"]}
    assert params["env.AIRFLOW_DAG_ID"]["value"] == "teamcity_build_status"
    assert body["parameters"]["href"] == "/app/rest/projects/id:DataPipelines/parameters"
    assert [p["id"] for p in body["projects"]["project"]] == ["DataPipelines_Vcs"]
    # a password parameter keeps its value to itself here too
    vcs = tc.get("/projects/DataPipelines_Vcs").json()
    secret = next(p for p in vcs["parameters"]["property"] if p["name"] == "env.AIRFLOW_API_TOKEN")
    assert "value" not in secret and secret["type"]["rawValue"] == "password"


def test_project_by_name_and_fields(tc):
    assert tc.get("/projects/name:Data Pipelines").json()["id"] == "DataPipelines"
    assert tc.get("/projects/DataPipelines?fields=readOnlyUI").json() == {
        "readOnlyUI": {"value": False}
    }


# -- build configurations -----------------------------------------------------------------


def test_build_types_list_and_per_project(tc):
    body = tc.get("/buildTypes").json()
    ids = [b["id"] for b in body["buildType"]]
    assert body["count"] == len(ids) and "DataPipelines_Publish" in ids
    item = body["buildType"][0]
    assert set(item) == {"id", "name", "projectName", "projectId", "href", "webUrl"}
    per_project = tc.get("/projects/DataPipelines/buildTypes").json()
    assert [b["id"] for b in per_project["buildType"]] == ids
    assert tc.get("/projects/DataPipelines_Vcs/buildTypes").json() == {
        "count": 0,
        "href": "/app/rest/buildTypes",
        "buildType": [],
    }
    filtered = tc.get("/buildTypes?locator=affectedProject:(id:_Root),name:Publish artifacts")
    assert [b["id"] for b in filtered.json()["buildType"]] == ["DataPipelines_Publish"]


def test_one_build_type(tc):
    body = tc.get("/buildTypes/id:DataPipelines_Publish").json()
    assert body["id"] == "DataPipelines_Publish" and body["projectId"] == "DataPipelines"
    assert body["project"]["id"] == "DataPipelines"
    names = {p["name"] for p in body["parameters"]["property"]}
    assert {"env.TEAMCITY_BUILD_ID", "env.AIRFLOW_URL"} <= names  # own and inherited
    assert_error(
        tc.get("/buildTypes/Nope"), 404, "No build type or template is found by id 'Nope'."
    )


def test_invisible_build_types_are_404(tc):
    tc.sim.state.add_project("Secret", "Secret")
    tc.sim.state.add_build_type("Secret_Build", "Secret")
    viewer = tc.viewer()
    assert tc.get("/buildTypes/Secret_Build", headers=viewer).status_code == 404
    listed = tc.get("/buildTypes", headers=viewer).json()["buildType"]
    assert "Secret_Build" not in [b["id"] for b in listed]


# -- /httpAuth/ and /guestAuth/ ------------------------------------------------------------


def test_http_auth_prefix_is_the_same_api_with_http_authentication(tc):
    r = requests.get(tc.root + "/httpAuth/app/rest/server", headers=tc.admin, timeout=5)
    assert r.status_code == 200 and r.json()["version"].startswith("2025")
    tc.sim.state.find_user("teamcity-bot").password = "bot-basic-pass-123"
    basic = base64.b64encode(b"teamcity-bot:bot-basic-pass-123").decode()
    r = requests.get(
        tc.root + "/httpAuth/app/rest/users/current",
        headers={"Authorization": f"Basic {basic}", **JSON},
        timeout=5,
    )
    assert r.json()["username"] == "teamcity-bot"
    anonymous = requests.get(tc.root + "/httpAuth/app/rest/server", timeout=5)
    assert anonymous.status_code == 401
    assert 'Basic realm="TeamCity"' in anonymous.headers["WWW-Authenticate"]
    assert tc.sim.requests[-1].path == "/httpAuth/app/rest/server"


def test_guest_auth_is_off_by_default(tc):
    r = requests.get(tc.root + "/guestAuth/app/rest/server", headers=JSON, timeout=5)
    assert r.status_code == 401 and r.text.startswith("Authentication required")


def test_guest_auth_acts_as_the_guest_with_its_permissions(tc):
    tc.sim.state.enable_guest({"DataPipelines": ["view_project"]})
    r = requests.get(tc.root + "/guestAuth/app/rest/buildTypes", headers=JSON, timeout=5)
    assert r.status_code == 200 and r.json()["count"] >= 1
    # credentials are ignored under /guestAuth/: still the guest, who may not run builds
    r = requests.post(
        tc.root + "/guestAuth/app/rest/buildQueue",
        headers=tc.admin,
        json={"buildTypeId": "DataPipelines_Publish"},
        timeout=5,
    )
    assert r.status_code == 403
    assert tc.sim.requests[-1].auth == "guest"


# -- faults on the new endpoints ------------------------------------------------------------


def test_lose_on_queue_queues_the_build_without_an_answer(tc):
    before = len(tc.sim.builds.all())
    tc.sim.faults.lose_next(1, only="/buildQueue", method="POST")
    with pytest.raises(requests.ConnectionError):
        requests.post(
            tc.url + "/buildQueue",
            headers=tc.admin,
            json={"buildTypeId": "DataPipelines_Publish"},
            timeout=5,
        )
    assert len(tc.sim.builds.all()) == before + 1  # the server queued it


def test_html_truncate_and_fail_reach_build_reads(tc):
    tc.sim.faults.html_next(1, only="/app/rest/builds")
    r = tc.get("/builds/id:1")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    tc.sim.faults.truncate_next(1, only="/app/rest/builds")
    r = tc.get("/builds?locator=state:any")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    tc.sim.faults.fail_next(1, status=503, only="/buildQueue")
    assert tc.get("/buildQueue").status_code == 503
    assert tc.get("/buildQueue").status_code == 200
