"""The simulator's injected faults, with raw HTTP: which ones process the request before they
strike (``lose``, ``truncate``, ``slow``) and which do not (``drop``, ``fail``, ``html``)."""

from __future__ import annotations

import pytest
import requests

from rotator.sim.teamcity.faults import LOGIN_PAGE, Faults

JSON = {"Accept": "application/json"}


@pytest.fixture
def tc(teamcity_sim, teamcity_admin_token):
    class TC:
        sim = teamcity_sim
        url = teamcity_sim.url
        admin = {"Authorization": f"Bearer {teamcity_admin_token}", **JSON}

        def create(self, name: str, timeout: float = 5) -> requests.Response:
            return requests.post(
                f"{self.url}/app/rest/users/airflow-bot/tokens",
                headers=self.admin,
                json={"name": name},
                timeout=timeout,
            )

        def names(self) -> set[str]:
            return set(self.sim.state.find_user("airflow-bot").tokens)

    return TC()


def test_lose_applies_the_request_then_closes_without_an_answer(tc):
    tc.sim.faults.lose_next(1, only="/tokens", method="POST")
    with pytest.raises(requests.ConnectionError):
        tc.create("lost-answer")
    assert "lost-answer" in tc.names(), "the token was created although the answer was lost"
    assert tc.create("next-one").status_code == 200, "one request only"
    assert [r.status for r in tc.sim.requests if r.path.endswith("/tokens")] == [0, 200]


def test_lose_a_delete_deletes(tc):
    assert tc.create("to-delete").status_code == 200
    tc.sim.faults.lose_next(1, method="DELETE")
    with pytest.raises(requests.ConnectionError):
        requests.delete(
            f"{tc.url}/app/rest/users/airflow-bot/tokens/to-delete", headers=tc.admin, timeout=5
        )
    assert "to-delete" not in tc.names()


def test_drop_closes_before_the_request_is_processed(tc):
    tc.sim.faults.drop_next(1, only="/tokens")
    with pytest.raises(requests.ConnectionError):
        tc.create("dropped")
    assert "dropped" not in tc.names()


def test_html_login_page_with_200_and_nothing_done(tc):
    tc.sim.faults.html_next(1, only="/tokens")
    r = tc.create("behind-sso")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text == LOGIN_PAGE
    with pytest.raises(ValueError):
        r.json()
    assert "behind-sso" not in tc.names()


def test_truncated_body_after_processing(tc):
    tc.sim.faults.truncate_next(1, only="/tokens")
    r = tc.create("cut-short")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        r.json()
    assert "cut-short" in tc.names(), "processed: the token exists, its value never arrived"


def test_slow_answer_times_the_client_out_but_is_processed(tc):
    tc.sim.faults.slow_next(1, 0.6, only="/tokens")
    with pytest.raises(requests.Timeout):
        tc.create("slow-one", timeout=0.2)
    import time

    deadline = time.monotonic() + 5
    while "slow-one" not in tc.names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "slow-one" in tc.names()


def test_fail_with_a_chosen_status_and_method_filter(tc):
    tc.sim.faults.fail_next(1, status=401, method="DELETE")
    r = requests.get(f"{tc.url}/app/rest/server", headers=tc.admin, timeout=5)
    assert r.status_code == 200, "a GET does not match a DELETE fault"
    assert tc.create("x1").status_code == 200
    r = requests.delete(
        f"{tc.url}/app/rest/users/airflow-bot/tokens/x1", headers=tc.admin, timeout=5
    )
    assert r.status_code == 401
    assert "x1" in tc.names()


def test_faults_strike_in_the_order_armed_and_count_down(tc):
    tc.sim.faults.fail_next(1, status=502, only="/app/rest/server")
    tc.sim.faults.html_next(1, only="/app/rest/server")
    statuses = [
        requests.get(f"{tc.url}/app/rest/server", headers=tc.admin, timeout=5) for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [502, 200, 200]
    assert statuses[1].headers["Content-Type"].startswith("text/html")
    assert statuses[2].json()["version"]
    assert tc.sim.faults.armed == 0
    assert tc.sim.faults.taken.get("fail", 0) >= 1 and tc.sim.faults.taken.get("html", 0) >= 1


def test_control_surface_arms_the_new_faults(tc):
    r = requests.post(
        f"{tc.url}/__sim/faults",
        headers=tc.admin,
        json={"lose_next": 1, "only": "/tokens", "method": "POST"},
        timeout=5,
    )
    assert r.status_code == 200
    with pytest.raises(requests.ConnectionError):
        tc.create("via-control")
    assert "via-control" in tc.names()
    bad = requests.post(
        f"{tc.url}/__sim/faults", headers=tc.admin, json={"slow_next": 1}, timeout=5
    )
    assert bad.status_code == 400, "slow needs seconds"


def test_first_version_api_still_works():
    faults = Faults()
    faults.fail_next(2, status=502, only="/x")
    assert (faults.fail_count, faults.fail_status) == (2, 502)
    assert faults.take("/y") is None
    assert faults.take("/x/1") == "fail"
    faults.fail_next(1, status=500)  # replaces the armed one, as before
    assert (faults.fail_count, faults.fail_status) == (1, 500)
    faults.drop_next(1)
    assert faults.drop_count == 1
    faults.clear()
    assert faults.take("/x") is None
    with pytest.raises(ValueError):
        faults.inject("explode")
