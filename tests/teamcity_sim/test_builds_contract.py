"""The simulator against the contract's "Builds" section, over raw HTTP only.

Each test names the contract lines it checks. Lifecycles are driven by the simulator's clock
(``advance_clock``) and ``sim.builds``, never by sleeping.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import requests

JSON = {"Accept": "application/json"}
BT = "DataPipelines_Publish"
DATE = r"^\d{8}T\d{6}\+0000$"


@pytest.fixture
def tc(teamcity_sim, teamcity_admin_token):
    class TC:
        url = teamcity_sim.url + "/app/rest"
        admin = {"Authorization": f"Bearer {teamcity_admin_token}", **JSON}
        sim = teamcity_sim

        def call(self, method, path, headers=None, **kw):
            return requests.request(
                method,
                self.url + path,
                headers=headers if headers is not None else self.admin,
                timeout=5,
                **kw,
            )

        def get(self, path, **kw):
            return self.call("GET", path, **kw)

        def post(self, path, **kw):
            return self.call("POST", path, **kw)

        def queue(self, **body):
            r = self.post("/buildQueue", json={"buildType": {"id": BT}, **body})
            assert r.status_code == 200, r.text
            return r.json()

        def token_for(self, user):
            if user == "viewer" and teamcity_sim.state.find_user("viewer") is None:
                teamcity_sim.state.add_user(
                    "viewer", permissions={"DataPipelines": ["view_project"]}
                )
            r = self.post(f"/users/{user}/tokens", json={"name": "t"})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['value']}", **JSON}

    # Builds of the seeded type wait an hour in the queue and run an hour: nothing moves
    # unless a test moves the clock or drives a build.
    teamcity_sim.builds.plan(BT, queue_seconds=3600, run_seconds=3600)
    return TC()


def assert_error(response, status, message):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0].startswith(f"Responding with error, status code: {status} ")
    assert lines[1].startswith("Details: ") and lines[1].endswith(message), response.text
    return lines


# -- Queue a build -------------------------------------------------------------------------


def test_queue_answers_the_queued_build_in_long_form(tc):
    body = tc.queue(
        branchName="feature/x",
        comment={"text": "from Airflow"},
        properties={"property": [{"name": "env.X", "value": "1"}]},
        tags={"tag": [{"name": "airflow-key"}]},
    )
    assert body["state"] == "queued" and body["buildTypeId"] == BT
    assert body["href"] == f"/app/rest/buildQueue/id:{body['id']}"
    assert body["webUrl"].startswith(tc.sim.url + "/")
    assert body["buildType"]["id"] == BT and body["buildType"]["projectId"] == "DataPipelines"
    assert {"name", "href"} <= set(body["buildType"])
    assert re.match(DATE, body["queuedDate"])
    assert body["branchName"] == "feature/x"
    assert body["comment"]["text"] == "from Airflow"
    assert body["properties"]["property"] == [{"name": "env.X", "value": "1"}]
    assert body["tags"]["tag"] == [{"name": "airflow-key"}]
    for absent in ("number", "status", "statusText", "startDate", "finishDate"):
        assert absent not in body, absent


def test_queue_with_build_type_id_and_with_xml(tc):
    r = tc.post("/buildQueue", json={"buildTypeId": BT})
    assert r.status_code == 200 and r.json()["state"] == "queued"
    r = tc.post(
        "/buildQueue",
        headers={**tc.admin, "Content-Type": "application/xml", "Accept": "application/xml"},
        data=f'<build branchName="b1"><buildType id="{BT}"/><comment><text>x</text></comment>'
        '<tags><tag name="t1"/><tag name="t2"/></tags></build>',
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/xml")
    assert '<build id="' in r.text and 'state="queued"' in r.text
    assert "<queuedDate>" in r.text and "number=" not in r.text
    xml_id = r.text.split('<build id="')[1].split('"')[0]
    built = tc.get(f"/builds/id:{xml_id}").json()
    assert built["comment"]["text"] == "x" and built["branchName"] == "b1"
    assert [t["name"] for t in built["tags"]["tag"]] == ["t1", "t2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "No 'buildType' element in the posted entry."),
        (
            {"buildType": {}},
            "No build type specified. Either 'id', 'internalId' or 'locator' attribute should "
            "be present.",
        ),
        (
            {"buildType": {"id": BT}, "comment": {}},
            "Submitted comment does not have 'text' set.",
        ),
    ],
)
def test_queue_400s(tc, body, message):
    assert_error(tc.post("/buildQueue", json=body), 400, message)


def test_queue_malformed_body_has_the_not_supported_hint(tc):
    r = tc.post("/buildQueue", headers={**tc.admin, "Content-Type": "application/json"}, data="{")
    lines = assert_error(r, 400, r.text.splitlines()[1].split(": ", 2)[-1])
    assert lines[2] == (
        "Not supported request. Check that URL, HTTP method and transferred data are correct."
    )


def test_queue_404s_for_unknown_build_types(tc):
    assert_error(
        tc.post("/buildQueue", json={"buildType": {"id": "Nope"}}),
        404,
        "No build type nor template is found by id 'Nope'.",
    )
    assert_error(
        tc.post("/buildQueue", json={"buildTypeId": "Nope"}),
        404,
        "No build type found by submitted id 'Nope'",
    )


def test_queue_without_run_build_permission_is_403(tc):
    viewer = tc.token_for("viewer")  # view only
    r = tc.post("/buildQueue", headers=viewer, json={"buildType": {"id": BT}})
    lines = assert_error(r, 403, "permission in project 'DataPipelines'")
    assert lines[2] == (
        "Access denied. Check the user has enough permissions to perform the operation."
    )
    runner = tc.token_for("teamcity-bot")  # run_build
    assert tc.post("/buildQueue", headers=runner, json={"buildTypeId": BT}).status_code == 200


# -- Lifecycle -----------------------------------------------------------------------------


def test_lifecycle_follows_the_plan_on_the_simulator_clock(tc):
    tc.sim.builds.plan(
        BT, queue_seconds=10, run_seconds=60, status="FAILURE", status_text="Tests failed: 3"
    )
    queued = tc.queue()
    build_id = queued["id"]
    tc.sim.advance_clock(11)
    running = tc.get(f"/builds/id:{build_id}").json()
    assert running["state"] == "running"
    assert running["status"] == "SUCCESS"  # "so far"
    assert running["number"] and running["statusText"]
    assert running["href"] == f"/app/rest/builds/id:{build_id}"
    assert running["startDate"] and "finishDate" not in running
    assert running["running-info"]["estimatedTotalSeconds"] == 60
    tc.sim.advance_clock(60)
    done = tc.get(f"/builds/id:{build_id}").json()
    assert done["state"] == "finished"
    assert (done["status"], done["statusText"]) == ("FAILURE", "Tests failed: 3")
    assert "running-info" not in done and "percentageComplete" not in done
    start = datetime.strptime(done["startDate"], "%Y%m%dT%H%M%S%z")
    finish = datetime.strptime(done["finishDate"], "%Y%m%dT%H%M%S%z")
    queued_at = datetime.strptime(done["queuedDate"], "%Y%m%dT%H%M%S%z")
    # the scheduled instants, not the moment somebody looked
    assert (finish - start).total_seconds() == pytest.approx(60, abs=1)
    assert (start - queued_at).total_seconds() == pytest.approx(10, abs=1)


def test_held_builds_move_only_when_the_test_says(tc):
    tc.sim.builds.hold(BT)
    build_id = tc.queue()["id"]
    tc.sim.advance_clock(86_400)
    assert tc.get(f"/builds/id:{build_id}").json()["state"] == "queued"
    tc.sim.builds.start(build_id)
    assert tc.get(f"/builds/id:{build_id}").json()["state"] == "running"
    tc.sim.builds.finish(build_id, "FAILURE", "Exit code 1")
    done = tc.get(f"/builds/id:{build_id}").json()
    assert (done["state"], done["status"], done["statusText"]) == (
        "finished",
        "FAILURE",
        "Exit code 1",
    )


def test_status_may_read_unknown_briefly_after_finishing_when_configured(tc):
    tc.sim.builds.plan(BT, queue_seconds=0, run_seconds=5, settle_seconds=3)
    build_id = tc.queue()["id"]
    tc.sim.advance_clock(6)
    assert tc.get(f"/builds/id:{build_id}").json()["status"] == "UNKNOWN"
    tc.sim.advance_clock(3)
    assert tc.get(f"/builds/id:{build_id}").json()["status"] == "SUCCESS"


def test_queued_builds_are_found_under_builds_and_buildqueue_keeps_answering(tc):
    build_id = tc.queue()["id"]
    by_builds = tc.get(f"/builds/id:{build_id}").json()
    assert by_builds["state"] == "queued"
    assert by_builds["href"] == f"/app/rest/buildQueue/id:{build_id}"
    tc.sim.builds.start(build_id)
    by_queue = tc.get(f"/buildQueue/id:{build_id}").json()
    assert by_queue["state"] == "running" and by_queue["id"] == build_id
    tc.sim.builds.finish(build_id)
    assert tc.get(f"/buildQueue/id:{build_id}").json()["state"] == "finished"


def test_unknown_build_id_is_404_with_the_servers_text(tc):
    assert_error(tc.get("/builds/id:99999"), 404, "No build found by id '99999'.")
    assert_error(tc.get("/buildQueue/id:99999"), 404, "No build found by id '99999'.")


def test_a_build_the_caller_may_not_view_is_403(tc):
    tc.sim.state.add_project("Secret", "Secret")
    tc.sim.state.add_build_type("Secret_Build", "Secret")
    hidden = tc.sim.builds.queue("Secret_Build")
    r = tc.get(f"/builds/id:{hidden.id}", headers=tc.token_for("viewer"))
    assert_error(r, 403, f"Not enough permissions to access build with id: {hidden.id}")


# -- Cancel --------------------------------------------------------------------------------


def test_cancel_a_queued_build_through_the_queue(tc):
    build_id = tc.queue()["id"]
    r = tc.post(
        f"/buildQueue/id:{build_id}", json={"comment": "not needed", "readdIntoQueue": False}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == build_id and body["state"] == "finished"
    assert body["status"] == "UNKNOWN" and body["statusText"].startswith("Canceled")
    assert body["number"] == "N/A"
    assert body["canceledInfo"]["text"] == "not needed"
    assert body["canceledInfo"]["user"]["username"] == "admin"
    assert "failedToStart" not in body
    # same id, now a finished canceled build
    assert tc.get(f"/builds/id:{build_id}").json()["state"] == "finished"


def test_cancel_through_the_queue_errors(tc):
    build_id = tc.queue()["id"]
    assert_error(
        tc.post(f"/buildQueue/id:{build_id}", json={"readdIntoQueue": True}),
        400,
        "Restore in queue is not supported for queued builds.",
    )
    tc.sim.builds.start(build_id)
    assert_error(
        tc.post(f"/buildQueue/id:{build_id}", json={"comment": "x"}),
        404,
        f"No queued build with id '{build_id}' can be found (build already started or finished?).",
    )
    assert_error(
        tc.post("/buildQueue/id:99999", json={"comment": "x"}),
        404,
        "No build promotion can be found by promotion id 99999",
    )


def test_cancel_through_the_queue_without_permission_is_403(tc):
    build_id = tc.queue()["id"]
    r = tc.post(f"/buildQueue/id:{build_id}", headers=tc.token_for("viewer"), json={})
    assert_error(r, 403, "Build was not canceled. Probably not sufficient permissions.")
    assert tc.get(f"/builds/id:{build_id}").json()["state"] == "queued"


def test_delete_from_the_queue_removes_for_good(tc):
    build_id = tc.queue()["id"]
    assert tc.post(f"/buildQueue/id:{build_id}", json={"comment": "x"}).status_code == 200
    r = tc.call("DELETE", f"/buildQueue/id:{build_id}")
    assert r.status_code == 204 and r.content == b""
    assert_error(tc.get(f"/builds/id:{build_id}"), 404, f"No build found by id '{build_id}'.")


def test_cancel_a_running_build(tc):
    build_id = tc.queue()["id"]
    tc.sim.builds.start(build_id)
    r = tc.post(f"/builds/id:{build_id}?fields=id,state,status,statusText,canceledInfo", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "state", "status", "statusText", "canceledInfo"}
    assert (body["state"], body["status"]) == ("finished", "UNKNOWN")
    assert body["statusText"].startswith("Canceled")
    assert body["canceledInfo"]["text"] == "Canceled via REST API"
    # already canceled: 200, nothing changes
    again = tc.post(f"/builds/id:{build_id}", json={"comment": "again"})
    assert (
        again.status_code == 200 and again.json()["canceledInfo"]["text"] == "Canceled via REST API"
    )


def test_cancel_a_queued_build_through_builds(tc):
    build_id = tc.queue()["id"]
    r = tc.post(f"/builds/id:{build_id}", json={"comment": "by builds"})
    assert r.status_code == 200
    assert r.json()["state"] == "finished" and r.json()["canceledInfo"]["text"] == "by builds"


def test_stopping_is_asynchronous_when_configured(tc):
    tc.sim.builds.plan(BT, queue_seconds=0, run_seconds=3600, stop_seconds=5)
    build_id = tc.queue()["id"]
    tc.sim.advance_clock(1)
    answer = tc.post(f"/builds/id:{build_id}", json={"comment": "stop"}).json()
    assert answer["state"] == "running"  # the 200 may still show running: keep polling
    tc.sim.advance_clock(5)
    done = tc.get(f"/builds/id:{build_id}").json()
    assert (done["state"], done["status"]) == ("finished", "UNKNOWN")


def test_cancel_running_with_readd_queues_a_copy(tc):
    build_id = tc.queue(tags={"tag": [{"name": "k"}]})["id"]
    tc.sim.builds.start(build_id)
    assert tc.post(f"/builds/id:{build_id}", json={"readdIntoQueue": True}).status_code == 200
    queued = tc.get(
        "/builds?locator=buildType:(id:DataPipelines_Publish),tag:k,state:queued"
    ).json()
    assert queued["count"] == 1 and queued["build"][0]["id"] != build_id


def test_cancel_a_finished_build_is_400(tc):
    build_id = tc.queue()["id"]
    tc.sim.builds.finish(build_id)
    assert_error(tc.post(f"/builds/id:{build_id}", json={}), 400, "Cannot cancel finished build")


def test_cancel_without_permission_through_builds_is_403(tc):
    build_id = tc.queue()["id"]
    r = tc.post(f"/builds/id:{build_id}", headers=tc.token_for("viewer"), json={})
    assert_error(r, 403, "You do not have enough permissions to cancel the build")


def test_ui_cancel_from_the_test_api(tc):
    build_id = tc.queue()["id"]
    tc.sim.builds.start(build_id)
    tc.sim.builds.cancel(build_id, comment="stopped from the UI")
    body = tc.get(f"/builds/id:{build_id}").json()
    assert body["statusText"].startswith("Canceled")
    assert body["canceledInfo"]["text"] == "stopped from the UI"


# -- Locators ------------------------------------------------------------------------------


def _ids(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body.get("build", []))
    return [b["id"] for b in body.get("build", [])]


def test_no_match_is_200_with_count_0(tc):
    r = tc.get("/builds?locator=buildType:(id:DataPipelines_Publish),tag:nothing-has-this")
    assert r.status_code == 200 and r.json()["count"] == 0


def test_default_filter_lists_finished_default_branch_builds_only(tc):
    seeded = _ids(tc.get("/builds?locator=buildType:(id:DataPipelines_Publish)"))
    queued = tc.queue(tags={"tag": [{"name": "T"}]})["id"]
    running = tc.queue(tags={"tag": [{"name": "T"}]})["id"]
    tc.sim.builds.start(running)
    done = tc.queue(tags={"tag": [{"name": "T"}]})["id"]
    tc.sim.builds.finish(done)
    branch = tc.queue(branchName="feature/y", tags={"tag": [{"name": "T"}]})["id"]
    tc.sim.builds.finish(branch)
    canceled = tc.queue(tags={"tag": [{"name": "T"}]})["id"]
    tc.post(f"/buildQueue/id:{canceled}", json={})
    # a bare tag finds only finished, default-branch, not canceled builds
    assert _ids(tc.get("/builds?locator=tag:T")) == [done]
    assert _ids(tc.get("/builds?locator=buildType:(id:DataPipelines_Publish)")) == [done, *seeded]
    # state:any keeps the other defaults (default branch, not canceled)
    assert _ids(tc.get("/builds?locator=tag:T,state:any")) == [queued, running, done]
    # defaultFilter:false drops them all
    assert _ids(tc.get("/builds?locator=tag:T,defaultFilter:false")) == [
        queued,
        running,
        canceled,
        branch,
        done,
    ]
    assert _ids(tc.get("/builds?locator=tag:T,branch:feature/y")) == [branch]
    assert _ids(tc.get("/builds?locator=tag:T,branch:(default:any)")) == [branch, done]
    assert _ids(tc.get("/builds?locator=tag:T,state:queued")) == [queued]
    assert _ids(tc.get("/builds?locator=tag:T,state:(queued:true,running:true)")) == [
        queued,
        running,
    ]


def test_the_retry_lookup(tc):
    """``buildType:(id:X),tag:T,state:(queued:true,running:true),defaultFilter:false``"""
    mine = tc.queue(branchName="feature/z", tags={"tag": [{"name": "try-key"}]})["id"]
    tc.queue(tags={"tag": [{"name": "other-key"}]})
    locator = "buildType:(id:DataPipelines_Publish),tag:try-key,state:(queued:true,running:true),defaultFilter:false"
    assert _ids(tc.get(f"/builds?locator={locator}")) == [mine]
    tc.sim.builds.start(mine)
    assert _ids(tc.get(f"/builds?locator={locator}")) == [mine]
    tc.sim.builds.finish(mine)
    assert _ids(tc.get(f"/builds?locator={locator}")) == []


def test_tags_are_exact_and_case_sensitive_unless_by_name(tc):
    build_id = tc.queue(tags={"tag": [{"name": "Key"}, {"name": "two"}]})["id"]
    tc.sim.builds.finish(build_id)
    assert _ids(tc.get("/builds?locator=tag:Key")) == [build_id]
    assert _ids(tc.get("/builds?locator=tag:key")) == []
    assert _ids(tc.get("/builds?locator=tag:(name:key)")) == [build_id]
    assert _ids(tc.get("/builds?locator=tag:Key,tag:two")) == [build_id]
    assert _ids(tc.get("/builds?locator=tag:Key,tag:three")) == []


def test_order_queue_then_running_then_finished_newest_first(tc):
    a, b, c, d = (tc.queue(tags={"tag": [{"name": "O"}]})["id"] for _ in range(4))
    tc.sim.builds.finish(a)
    tc.sim.builds.finish(b)
    tc.sim.builds.start(c)
    top = tc.queue(tags={"tag": [{"name": "O"}]}, triggeringOptions={"queueAtTop": True})["id"]
    assert _ids(tc.get("/builds?locator=tag:O,state:any")) == [top, d, c, b, a]


def test_count_start_and_next_href(tc):
    ids = [tc.queue(tags={"tag": [{"name": "P"}]})["id"] for _ in range(5)]
    for build_id in ids:
        tc.sim.builds.finish(build_id)
    body = tc.get("/builds?locator=tag:P,count:2").json()
    assert [b["id"] for b in body["build"]] == ids[::-1][:2]
    assert "nextHref" in body and "start:2" in body["nextHref"]
    following = tc.get(body["nextHref"].removeprefix("/app/rest")).json()
    assert [b["id"] for b in following["build"]] == ids[::-1][2:4]
    last = tc.get("/builds?locator=tag:P,count:2,start:4").json()
    assert [b["id"] for b in last["build"]] == ids[:1] and "nextHref" not in last


def test_property_and_status_dimensions(tc):
    ok = tc.queue(properties={"property": [{"name": "env.K", "value": "v"}]})["id"]
    tc.sim.builds.finish(ok)
    bad = tc.queue()["id"]
    tc.sim.builds.finish(bad, "FAILURE")
    assert _ids(tc.get("/builds?locator=property:(name:env.K,value:v)")) == [ok]
    assert _ids(tc.get("/builds?locator=property:(name:env.K)")) == [ok]
    assert _ids(tc.get("/builds?locator=property:(name:env.K,value:w)")) == []
    assert bad in _ids(tc.get("/builds?locator=status:FAILURE"))
    assert ok not in _ids(tc.get("/builds?locator=status:FAILURE"))


def test_list_items_are_short(tc):
    build_id = tc.queue(branchName="feature/q")["id"]
    tc.sim.builds.start(build_id)
    tc.sim.advance_clock(1800)
    item = tc.get("/builds?locator=state:running,branch:(default:any)").json()["build"][0]
    assert {"id", "buildTypeId", "number", "status", "state", "href", "webUrl"} <= set(item)
    assert item["branchName"] == "feature/q" and item["percentageComplete"] == 50
    assert "statusText" not in item and "buildType" not in item


def test_single_get_by_locator_is_the_first_match_or_404(tc):
    first = tc.queue()["id"]
    tc.sim.builds.finish(first)
    newer = tc.queue()["id"]
    tc.sim.builds.finish(newer)
    assert tc.get(f"/builds/buildType:(id:{BT}),count:1").json()["id"] == newer
    assert_error(
        tc.get("/builds/tag:none-such"), 404, "Nothing is found by locator 'tag:none-such'."
    )


def test_locator_errors(tc):
    r = tc.get("/builds?locator=state:sleeping")
    assert_error(
        r,
        400,
        "Unsupported value of 'state' dimension: 'sleeping'. Should be one of the build "
        "states('queued', 'running', 'finished') or 'any'",
    )
    r = tc.get("/buildQueue?locator=tag:x")
    assert r.status_code == 400 and "Locator dimension [tag] is unknown." in r.text
    assert r.text.splitlines()[2] == "Invalid request. Check locator is specified correctly."


def test_build_queue_list(tc):
    queued = tc.queue()["id"]
    started = tc.queue()["id"]
    tc.sim.builds.start(started)
    assert _ids(tc.get(f"/buildQueue?locator=buildType:(id:{BT})")) == [queued]
    assert _ids(tc.get("/buildQueue")) == [queued]


# -- Tags, fields --------------------------------------------------------------------------


def test_tags_subresource(tc):
    build_id = tc.queue(tags={"tag": [{"name": "a"}]})["id"]
    path = f"/builds/id:{build_id}/tags"
    assert tc.get(path).json() == {"count": 1, "tag": [{"name": "a"}]}
    added = tc.post(path, json={"tag": [{"name": "b"}, {"name": "c"}]})
    assert added.status_code == 200 and added.json() == {
        "count": 2,
        "tag": [{"name": "b"}, {"name": "c"}],
    }
    one = tc.post(path, headers={**tc.admin, "Content-Type": "text/plain"}, data="d")
    assert one.status_code == 200 and one.text == "d"
    assert [t["name"] for t in tc.get(path).json()["tag"]] == ["a", "b", "c", "d"]
    assert_error(
        tc.post(path, headers={**tc.admin, "Content-Type": "text/plain"}, data=""),
        400,
        "Cannot apply empty tag, should have non empty request body",
    )
    replaced = tc.call("PUT", path, json={"tag": [{"name": "z"}]})
    assert replaced.status_code == 200 and tc.get(path).json()["tag"] == [{"name": "z"}]


def test_fields_narrow_single_builds_and_lists(tc):
    build_id = tc.queue()["id"]
    tc.sim.builds.finish(build_id, "FAILURE", "broken")
    one = tc.get(f"/builds/id:{build_id}?fields=id,state,status,statusText,webUrl").json()
    assert set(one) == {"id", "state", "status", "statusText", "webUrl"}
    nested = tc.get(f"/builds/id:{build_id}?fields=id,buildType(id,name),unknownField").json()
    assert nested == {"id": build_id, "buildType": {"id": BT, "name": "Publish artifacts"}}
    assert "queuedDate" in tc.get(f"/builds/id:{build_id}?fields=$long").json()
    listed = tc.get(f"/builds?locator=id:{build_id}&fields=count,build(id,state)").json()
    assert listed == {"count": 1, "build": [{"id": build_id, "state": "finished"}]}
    assert_error(
        tc.get(f"/builds/id:{build_id}?fields=id,buildType(id"),
        400,
        "Error parsing fields specification: missing ')' in 'id,buildType(id'",
    )


def test_no_rate_limits(tc):
    statuses = {tc.get("/builds?locator=state:any").status_code for _ in range(30)}
    assert statuses == {200}


# -- the seed's build types and the control surface ----------------------------------------


def test_seeded_build_types_follow_their_lifecycles(tc):
    nightly = tc.post("/buildQueue", json={"buildTypeId": "DataPipelines_Nightly"}).json()
    failing = tc.post("/buildQueue", json={"buildTypeId": "DataPipelines_IntegrationTests"}).json()
    deploy = tc.post("/buildQueue", json={"buildTypeId": "DataPipelines_Deploy"}).json()
    assert nightly["branchName"] == "main"  # the VCS default branch
    assert deploy["waitReason"] == "Build is waiting for a compatible agent"
    tc.sim.advance_clock(10)
    done = tc.get(f"/builds/id:{nightly['id']}").json()
    assert (done["status"], done["statusText"], done["defaultBranch"]) == (
        "SUCCESS",
        "Tests passed: 42",
        True,
    )
    assert tc.get(f"/builds/id:{failing['id']}").json()["statusText"].startswith("Tests failed: 3")
    assert tc.get(f"/builds/id:{deploy['id']}").json()["state"] == "queued"
    # a default-branch build counts as such for the default filter
    assert _ids(tc.get("/builds?locator=buildType:(id:DataPipelines_Nightly)")) == [nightly["id"]]


def test_control_surface_drives_builds_over_http(tc):
    admin = tc.admin
    sim = tc.sim.url + "/__sim"
    r = requests.post(
        f"{sim}/buildTypes/{BT}/plan",
        headers=admin,
        json={"queueSeconds": None, "runSeconds": None, "status": "FAILURE"},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    build_id = tc.queue()["id"]
    assert requests.post(f"{sim}/builds/{build_id}/start", headers=admin, timeout=5).json() == {
        "state": "running"
    }
    r = requests.post(
        f"{sim}/builds/{build_id}/finish",
        headers=admin,
        json={"status": "FAILURE", "statusText": "Exit code 2"},
        timeout=5,
    )
    assert r.json() == {"state": "finished"}
    assert tc.get(f"/builds/id:{build_id}").json()["statusText"] == "Exit code 2"
    other = tc.queue()["id"]
    requests.post(f"{sim}/builds/{other}/cancel", headers=admin, json={"comment": "ui"}, timeout=5)
    assert tc.get(f"/builds/id:{other}").json()["canceledInfo"]["text"] == "ui"
    missing = requests.post(f"{sim}/builds/99999/start", headers=admin, timeout=5)
    assert missing.status_code == 404
    bad = requests.post(
        f"{sim}/buildTypes/{BT}/plan", headers=admin, json={"status": "MAYBE"}, timeout=5
    )
    assert bad.status_code == 400
