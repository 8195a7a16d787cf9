"""The simulator against ``teamcity-contract.md``, line by line, with raw HTTP only.

No client of ours is used here: the simulator must behave like the server, whatever our
client would prefer. Each test names the contract line it checks.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
import requests

from rotator.servers.process import ServerProcess, free_port

JSON = {"Accept": "application/json"}


@pytest.fixture
def tc(teamcity_sim, teamcity_admin_token):
    class TC:
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

        def post(self, path, headers=None, **kw):
            return requests.post(
                self.url + path,
                headers=headers if headers is not None else self.admin,
                timeout=5,
                **kw,
            )

        def put(self, path, headers=None, **kw):
            return requests.put(
                self.url + path,
                headers=headers if headers is not None else self.admin,
                timeout=5,
                **kw,
            )

        def delete(self, path, headers=None, **kw):
            return requests.delete(
                self.url + path,
                headers=headers if headers is not None else self.admin,
                timeout=5,
                **kw,
            )

        def token_for(self, user, name="t", **body):
            r = self.post(f"/users/{user}/tokens", json={"name": name, **body})
            assert r.status_code == 200, r.text
            return r.json()["value"]

    return TC()


def bearer(token):
    return {"Authorization": f"Bearer {token}", **JSON}


def assert_error(response, status, message):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0].startswith(f"Responding with error, status code: {status} ")
    assert lines[1].startswith("Details: ") and message in lines[1], response.text


# -- Common ------------------------------------------------------------------------------------


def test_default_response_type_is_xml_and_json_on_request(tc):
    xml = tc.get("/server", headers={"Authorization": tc.admin["Authorization"]})
    assert xml.headers["Content-Type"].startswith("application/xml")
    assert xml.text.startswith("<?xml") and "<server " in xml.text
    assert tc.get("/server").headers["Content-Type"].startswith("application/json")


def test_unsupported_content_type_is_415_and_accept_406_without_details(tc):
    r = tc.post("/users/admin/tokens", headers={**tc.admin, "Content-Type": "image/png"}, data=b"x")
    assert r.status_code == 415
    assert "Make sure you have supplied correct 'Content-Type' header." in r.text
    assert "Details:" not in r.text
    r = tc.get("/server", headers={**tc.admin, "Accept": "image/png"})
    assert r.status_code == 406
    assert "Make sure you have supplied correct 'Accept' header." in r.text
    assert "Details:" not in r.text


def test_no_credentials_is_401_with_both_schemes(tc):
    r = requests.get(tc.url + "/server", timeout=5)
    assert r.status_code == 401
    assert r.headers["Content-Type"].startswith("text/plain")
    assert 'Basic realm="TeamCity"' in r.headers["WWW-Authenticate"]
    assert 'Bearer realm="TeamCity"' in r.headers["WWW-Authenticate"]
    assert r.text.startswith("Authentication required")


@pytest.mark.parametrize("token", ["nope", "x" * 43])
def test_invalid_bearer_token_is_401(tc, token):
    r = tc.get("/server", headers=bearer(token))
    assert r.status_code == 401
    assert r.text.startswith(
        "Invalid authentication request or authentication scheme is not supported"
    )


def test_basic_auth_works(tc, monkeypatch):
    tc.sim.state.find_user("teamcity-bot").password = "bot-basic-pass-123"
    creds = base64.b64encode(b"teamcity-bot:bot-basic-pass-123").decode()
    assert (
        tc.get("/users/current", headers={"Authorization": f"Basic {creds}", **JSON}).json()[
            "username"
        ]
        == "teamcity-bot"
    )
    wrong = base64.b64encode(b"teamcity-bot:wrong").decode()
    assert tc.get("/server", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_entities_the_caller_may_not_see_are_404_not_403(tc):
    token = tc.token_for("teamcity-bot")
    assert_error(tc.get("/users/admin", headers=bearer(token)), 404, "User not found")
    tc.sim.state.add_project("Secret", "Secret project")
    r = tc.get("/projects/Secret", headers=bearer(token))
    assert r.status_code == 404


def test_authenticated_but_not_allowed_is_403(tc):
    token = tc.token_for("airflow-bot")  # view only
    r = tc.put(
        "/projects/DataPipelines/parameters/env.X", headers=bearer(token), json={"value": "v"}
    )
    assert_error(r, 403, "Edit project")


def test_dates_use_teamcity_format_and_null_fields_are_omitted(tc):
    body = tc.get("/server").json()
    assert len(body["currentTime"]) == len("20270101T120000+0000")
    assert body["currentTime"][8] == "T" and body["currentTime"].endswith("+0000")
    r = tc.post("/users/airflow-bot/tokens", json={"name": "permanent"})
    assert "expirationTime" not in r.json()


def test_unknown_json_fields_are_ignored(tc):
    r = tc.post(
        "/users/airflow-bot/tokens", json={"name": "x", "colour": "blue", "nested": {"a": 1}}
    )
    assert r.status_code == 200


def test_bearer_requests_are_exempt_from_csrf_but_cookie_writes_are_not(tc):
    tc.sim.state.find_user("admin").password = "admin-basic-pw-1"
    creds = base64.b64encode(b"admin:admin-basic-pw-1").decode()
    session = requests.Session()
    assert (
        session.get(
            tc.url + "/server", headers={"Authorization": f"Basic {creds}"}, timeout=5
        ).status_code
        == 200
    )
    assert "TCSESSIONID" in session.cookies
    r = session.post(
        tc.url + "/users/admin/tokens", json={"name": "via-cookie"}, headers=JSON, timeout=5
    )
    assert_error(r, 403, "CSRF")
    r = session.post(
        tc.url + "/users/admin/tokens", json={"name": "via-bearer"}, headers=tc.admin, timeout=5
    )
    assert r.status_code == 200


def test_authorization_header_wins_over_a_valid_session_cookie(tc):
    tc.sim.state.find_user("admin").password = "admin-basic-pw-1"
    creds = base64.b64encode(b"admin:admin-basic-pw-1").decode()
    session = requests.Session()
    session.get(tc.url + "/server", headers={"Authorization": f"Basic {creds}"}, timeout=5)
    r = session.get(tc.url + "/server", headers=bearer("bad-token"), timeout=5)
    assert r.status_code == 401


def test_unparseable_bodies_are_400_not_500(tc):
    json_h = {**tc.admin, "Content-Type": "application/json"}
    xml_h = {**tc.admin, "Content-Type": "application/xml"}
    assert_error(tc.post("/users/admin/tokens", headers=json_h, data="{not json"), 400, "JSON")
    assert_error(tc.post("/users/admin/tokens", headers=xml_h, data="<token name="), 400, "XML")
    assert tc.post("/users/admin/tokens", json={"name": ["wrong", "type"]}).status_code == 400
    assert tc.post("/users/admin/tokens", json=[1, 2]).status_code == 400


def test_xml_request_bodies_are_accepted(tc):
    r = tc.post(
        "/users/airflow-bot/tokens",
        headers={**tc.admin, "Content-Type": "application/xml"},
        data='<token name="from-xml" expirationTime="20991231T000000+0000"/>',
    )
    assert r.status_code == 200 and r.json()["name"] == "from-xml"


def test_a_huge_body_is_refused_cleanly(tc):
    r = tc.post(
        "/users/admin/tokens",
        headers={**tc.admin, "Content-Type": "application/json"},
        data=b"x" * (2 * 1024 * 1024),
    )
    assert r.status_code == 413
    assert r.headers["Content-Type"].startswith("text/plain")


# -- Access tokens -------------------------------------------------------------------------------


def test_create_token_with_expiry_and_restrictions(tc):
    r = tc.post(
        "/users/airflow-bot/tokens",
        json={
            "name": "scoped",
            "expirationTime": "20991231T000000+0000",
            "permissionRestrictions": {
                "permissionRestriction": [
                    {
                        "isGlobalScope": False,
                        "project": {"id": "DataPipelines"},
                        "permission": {"id": "view_project"},
                    }
                ]
            },
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "scoped" and body["value"] and body["creationTime"]
    assert body["expirationTime"] == "20991231T000000+0000"
    assert tc.get("/server", headers=bearer(body["value"])).status_code == 200


def test_create_permanent_token_by_name_in_url(tc):
    r = tc.post(
        "/users/airflow-bot/tokens/forever",
        headers={"Authorization": tc.admin["Authorization"], **JSON},
    )
    assert r.status_code == 200
    assert r.json()["name"] == "forever" and "expirationTime" not in r.json()
    assert tc.get("/server", headers=bearer(r.json()["value"])).status_code == 200


def test_list_tokens_names_only_by_default_and_fields_on_request(tc):
    tc.token_for("airflow-bot", "one", expirationTime="20991231T000000+0000")
    listed = tc.get("/users/airflow-bot/tokens").json()
    assert listed == {"count": 1, "token": [{"name": "one"}]}
    full = tc.get(
        "/users/airflow-bot/tokens?fields=count,token(name,creationTime,expirationTime,permissionRestrictions)"
    ).json()
    assert full["token"][0]["expirationTime"] == "20991231T000000+0000"
    assert "creationTime" in full["token"][0]
    assert all("value" not in t for t in full["token"])


def test_delete_token_is_204_then_404_and_the_token_stops_working(tc):
    value = tc.token_for("airflow-bot", "gone")
    assert tc.delete("/users/airflow-bot/tokens/gone").status_code == 204
    assert tc.get("/server", headers=bearer(value)).status_code == 401
    assert tc.delete("/users/airflow-bot/tokens/gone").status_code == 404


def test_token_errors(tc):
    assert_error(
        tc.post("/users/airflow-bot/tokens", json={"name": ""}), 400, "name cannot be empty"
    )
    assert_error(
        tc.post(
            "/users/airflow-bot/tokens",
            json={"name": "old", "expirationTime": "20000101T000000+0000"},
        ),
        400,
        "expirationDate should be after the current date",
    )

    def restricted(project, permission):
        return {
            "name": f"r-{project}-{permission}",
            "permissionRestrictions": {
                "permissionRestriction": [
                    {
                        "isGlobalScope": False,
                        "project": {"id": project},
                        "permission": {"id": permission},
                    }
                ]
            },
        }

    assert (
        tc.post(
            "/users/airflow-bot/tokens", json=restricted("DataPipelines", "edit_project")
        ).status_code
        == 403
    )
    assert_error(
        tc.post("/users/airflow-bot/tokens", json=restricted("Nope", "view_project")),
        404,
        "Project not found for external id [Nope]",
    )
    tc.token_for("airflow-bot", "dup")
    assert tc.post("/users/airflow-bot/tokens", json={"name": "dup"}).status_code == 400


@pytest.mark.parametrize("locator", ["airflow-bot", "AIRFLOW-BOT", "username:Airflow-Bot", "id:2"])
def test_user_locators(tc, locator):
    assert tc.get(f"/users/{locator}").json()["username"] == "airflow-bot"


def test_current_user_locator_and_unknown_users(tc):
    token = tc.token_for("teamcity-bot")
    assert tc.get("/users/current", headers=bearer(token)).json()["username"] == "teamcity-bot"
    assert_error(tc.get("/users/nobody"), 404, "User not found")
    assert_error(tc.get("/users/id:999"), 404, "User not found")


def test_a_token_stops_working_when_it_expires(tc):
    r = tc.post(
        "/users/airflow-bot/tokens",
        json={"name": "short", "expirationTime": "20991231T000000+0000"},
    )
    value = r.json()["value"]
    assert tc.get("/server", headers=bearer(value)).status_code == 200
    tc.sim.state.find_user("airflow-bot").tokens["short"].expires = tc.sim.state.now()
    assert tc.get("/server", headers=bearer(value)).status_code == 401


def test_restricted_token_cannot_exceed_its_restrictions(tc):
    tc.sim.state.find_user("teamcity-bot").permissions["DataPipelines"].add("edit_project")
    r = tc.post(
        "/users/teamcity-bot/tokens",
        json={
            "name": "view-only",
            "permissionRestrictions": {
                "permissionRestriction": [
                    {
                        "isGlobalScope": False,
                        "project": {"id": "DataPipelines"},
                        "permission": {"id": "view_project"},
                    }
                ]
            },
        },
    )
    value = r.json()["value"]
    assert tc.get("/projects/DataPipelines/parameters", headers=bearer(value)).status_code == 200
    put = tc.put(
        "/projects/DataPipelines/parameters/env.Y", headers=bearer(value), json={"value": "v"}
    )
    assert put.status_code == 403


# -- Parameters ----------------------------------------------------------------------------------

P = "/projects/DataPipelines/parameters"
B = "/buildTypes/DataPipelines_Publish/parameters"


def test_collection_shape_and_locator_filter(tc):
    body = tc.get(P).json()
    assert set(body) == {"count", "href", "property"} and body["count"] == len(body["property"])
    own = tc.get(B + "?locator=inherited:false").json()
    assert [p["name"] for p in own["property"]] == ["env.TEAMCITY_BUILD_ID"]
    named = tc.get(B + "?locator=name:env.AIRFLOW_URL").json()["property"]
    assert named == [
        {"name": "env.AIRFLOW_URL", "value": "http://127.0.0.1:8080", "inherited": True}
    ]


def test_post_creates_or_replaces_one(tc):
    r = tc.post(P, json={"name": "env.NEW", "value": "1"})
    assert r.status_code == 200 and r.json() == {"name": "env.NEW", "value": "1"}
    tc.post(P, json={"name": "env.NEW", "value": "2"})
    assert tc.get(P + "/env.NEW").json()["value"] == "2"


def test_put_collection_replaces_all_atomically(tc):
    r = tc.put(P, json={"property": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]})
    assert r.status_code == 200 and r.json()["count"] >= 2
    names = {p["name"] for p in tc.get(P + "?locator=inherited:false").json()["property"]}
    assert names == {"a", "b"}
    bad = tc.put(P, json={"property": [{"name": "c", "value": "3"}, {"name": "d"}]})
    assert_error(bad, 400, "Cannot set parameters:")
    names_after = {p["name"] for p in tc.get(P + "?locator=inherited:false").json()["property"]}
    assert names_after == {"a", "b"}


def test_delete_collection_and_one(tc):
    tc.post(P, json={"name": "x", "value": "1"})
    assert tc.delete(P + "/x").status_code == 204
    assert_error(tc.get(P + "/x"), 404, "No parameter with name 'x' is found.")
    assert tc.delete(P).status_code == 204
    assert tc.get(P + "?locator=inherited:false").json()["count"] == 0


def test_put_one_creates_and_the_url_name_wins(tc):
    r = tc.put(P + "/env.FROM_URL", json={"name": "env.FROM_BODY", "value": "v"})
    assert r.status_code == 200 and r.json()["name"] == "env.FROM_URL"
    assert tc.get(P + "/env.FROM_URL").json()["value"] == "v"
    assert tc.get(P + "/env.FROM_BODY").status_code == 404


def test_value_and_type_subresources(tc):
    tc.put(P + "/plain", json={"value": "hello"})
    text = {"Authorization": tc.admin["Authorization"], "Accept": "text/plain"}
    assert tc.get(P + "/plain/value", headers=text).text == "hello"
    r = tc.put(P + "/plain/value", headers={**text, "Content-Type": "text/plain"}, data="bye")
    assert r.status_code == 200 and tc.get(P + "/plain/value", headers=text).text == "bye"
    assert tc.get(P + "/plain/type").json() == {}
    tc.put(P + "/plain/type", json={"rawValue": "text"})
    assert tc.get(P + "/plain/type").json() == {"rawValue": "text"}


def test_password_parameters_are_write_only(tc):
    tc.put(P + "/env.SECRET", json={"value": "hunter2-hunter2", "type": {"rawValue": "password"}})
    got = tc.get(P + "/env.SECRET").json()
    assert "value" not in got and got["type"] == {"rawValue": "password"}
    text = {"Authorization": tc.admin["Authorization"], "Accept": "text/plain"}
    assert_error(
        tc.get(P + "/env.SECRET/value", headers=text),
        400,
        "Secure parameters cannot be retrieved via remote API by default.",
    )
    tc.put(
        P + "/env.SECRET/value",
        headers={**text, "Content-Type": "text/plain"},
        data="next-secret-1",
    )
    assert tc.get(P + "/env.SECRET/type").json() == {"rawValue": "password"}
    assert tc.sim.state.projects["DataPipelines"].parameters["env.SECRET"].value == "next-secret-1"
    assert "next-secret-1" not in tc.get(P).text


def test_hidden_password_type_spec_is_valid(tc):
    r = tc.put(P + "/h", json={"value": "v", "type": {"rawValue": "password display='hidden'"}})
    assert r.status_code == 200 and "value" not in r.json()


def test_changing_a_password_type_blanks_its_value(tc):
    tc.put(P + "/pw", json={"value": "hunter2-hunter2", "type": {"rawValue": "password"}})
    tc.put(P + "/pw/type", json={"rawValue": "text"})
    text = {"Authorization": tc.admin["Authorization"], "Accept": "text/plain"}
    assert tc.get(P + "/pw/value", headers=text).text == ""


def test_parameter_errors(tc):
    assert_error(
        tc.post(P, json={"name": "", "value": "v"}), 400, "Parameter name cannot be empty."
    )
    assert_error(
        tc.post(P, json={"name": "n"}),
        400,
        "Parameter value for the parameter 'n' should be specified (can be \"\").",
    )
    assert_error(tc.get(P + "/missing"), 404, "No parameter with name 'missing' is found.")
    assert_error(
        tc.post(P, json={"name": "n", "value": "v", "type": {"rawValue": "banana"}}),
        400,
        "Wrong parameter type",
    )


def test_inherited_parameters_are_marked(tc):
    props = {p["name"]: p for p in tc.get(B).json()["property"]}
    assert props["env.AIRFLOW_URL"]["inherited"] is True
    assert "inherited" not in props["env.TEAMCITY_BUILD_ID"]


def test_read_only_ui_and_versioned_settings_tokens(tc):
    body = tc.get("/projects/DataPipelines_Vcs?fields=readOnlyUI").json()
    assert body == {"readOnlyUI": {"value": True}}
    refused = tc.put("/projects/DataPipelines_Vcs/parameters/env.Z", json={"value": "v"})
    assert refused.status_code == 403
    r = tc.post(
        "/projects/DataPipelines_Vcs/versionedSettings/tokens",
        json={
            "versionedSettingsToken": [
                {"name": "airflow-api-token", "value": "tok-vcs-12345", "description": "d"}
            ]
        },
    )
    assert r.status_code == 200 and "tok-vcs-12345" not in r.text
    assert (
        tc.sim.agent_parameter("DataPipelines_Publish", "env.AIRFLOW_URL")
        == "http://127.0.0.1:8080"
    )


def test_read_only_refusal_is_configurable(tc):
    tc.sim.state.refuse_edits_when_read_only = False
    assert (
        tc.put("/projects/DataPipelines_Vcs/parameters/env.Z", json={"value": "v"}).status_code
        == 200
    )


# -- Reading ---------------------------------------------------------------------------------------


def test_server_and_current_user(tc):
    server = tc.get("/server").json()
    assert {
        "version",
        "versionMajor",
        "versionMinor",
        "buildNumber",
        "currentTime",
        "webUrl",
    } <= set(server)
    me = tc.get("/users/current").json()
    assert {"username", "name", "id"} <= set(me) and me["username"] == "admin"


def test_builds_by_id_and_by_build_type(tc):
    # The lifecycle itself is in test_builds_contract.py; here: the reading endpoints.
    queued = tc.post("/buildQueue", json={"buildType": {"id": "DataPipelines_Publish"}}).json()
    assert queued["state"] == "queued"
    tc.sim.builds.finish(queued["id"])
    by_type = tc.get("/builds/buildType:(id:DataPipelines_Publish),count:1").json()
    assert by_type["id"] == queued["id"]
    finished = tc.get(f"/builds/id:{queued['id']}").json()
    assert finished["state"] == "finished" and finished["status"] == "SUCCESS"
    assert {"id", "buildTypeId", "number", "statusText", "finishDate", "webUrl"} <= set(finished)
    assert_error(tc.get("/builds/id:424242"), 404, "No build found by id '424242'.")


def test_unknown_resource_and_method(tc):
    assert tc.get("/nothing/here").status_code == 404
    assert tc.put("/server", json={}).status_code == 405


# -- the simulator as a process -----------------------------------------------------------


def test_simulator_runs_as_a_process_with_the_admin_token_from_the_environment(tmp_path):
    port = free_port()
    token = "adm-from-env-" + os.urandom(8).hex()
    env = {**os.environ, "SIM_ADMIN_TOKEN": token}
    proc = ServerProcess(
        "teamcity-sim",
        [
            sys.executable,
            "-m",
            "rotator.sim.teamcity",
            "--port",
            str(port),
            "--admin-token-env",
            "SIM_ADMIN_TOKEN",
        ],
        ready=lambda: (
            requests.get(f"http://127.0.0.1:{port}/app/rest/server", timeout=1).status_code == 401
        ),
        log_path=tmp_path / "sim.log",
        env=env,
    )
    with proc:
        url = f"http://127.0.0.1:{port}"
        assert (
            requests.get(url + "/app/rest/server", headers=bearer(token), timeout=5).status_code
            == 200
        )
        r = requests.post(
            url + "/__sim/faults",
            headers=bearer(token),
            json={"fail_next": 1, "status": 502},
            timeout=5,
        )
        assert r.status_code == 200
        assert (
            requests.get(url + "/app/rest/server", headers=bearer(token), timeout=5).status_code
            == 502
        )
        log = requests.get(url + "/__sim/requests", headers=bearer(token), timeout=5).json()
        assert [e["status"] for e in log][-1] == 502
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert token.encode() not in f.read()
    assert token not in (tmp_path / "sim.log").read_text()


def test_simulator_cli_rejects_a_bad_seed(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "rotator.sim.teamcity", "--port", "0", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "not JSON" in result.stderr and "Traceback" not in result.stderr


def test_xml_entity_bombs_are_refused(tc):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<token name="&b;"/>'
    )
    r = tc.post(
        "/users/admin/tokens", headers={**tc.admin, "Content-Type": "application/xml"}, data=bomb
    )
    assert_error(r, 400, "XML")
