"""The outage proxy's "applied, then the answer is lost" mode (``lose_next``), which the
Airflow machine uses, against the TeamCity simulator behind it: the server carries the request
out, the client sees the connection cut."""

from __future__ import annotations

import pytest
import requests

from tests.fixtures.outage import OutageProxy


@pytest.fixture
def proxy(teamcity_sim):
    p = OutageProxy(int(teamcity_sim.url.rsplit(":", 1)[1]))
    yield p
    p.close()


def create(url: str, token: str, name: str) -> requests.Response:
    return requests.post(
        f"{url}/app/rest/users/airflow-bot/tokens",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        json={"name": name},
        timeout=5,
    )


def test_lose_forwards_the_request_and_cuts_the_answer(proxy, teamcity_sim, teamcity_admin_token):
    proxy.lose_next(1, only="/tokens", method="POST")
    with pytest.raises(requests.ConnectionError):
        create(proxy.url, teamcity_admin_token, "lost-on-the-way-back")
    assert "lost-on-the-way-back" in teamcity_sim.state.find_user("airflow-bot").tokens
    assert proxy.lost == 1
    assert create(proxy.url, teamcity_admin_token, "answered").status_code == 200


def test_lose_only_matching_requests(proxy, teamcity_admin_token):
    proxy.lose_next(1, only="/tokens", method="DELETE")
    headers = {"Authorization": f"Bearer {teamcity_admin_token}", "Accept": "application/json"}
    with requests.Session() as session:  # one kept-alive connection for all three
        assert session.get(f"{proxy.url}/app/rest/server", headers=headers, timeout=5).ok
        assert session.post(
            f"{proxy.url}/app/rest/users/airflow-bot/tokens",
            headers=headers,
            json={"name": "kept"},
            timeout=5,
        ).ok
        with pytest.raises(requests.ConnectionError):
            session.delete(
                f"{proxy.url}/app/rest/users/airflow-bot/tokens/kept", headers=headers, timeout=5
            )
    assert proxy.lost == 1


def test_down_and_clear(proxy, teamcity_admin_token):
    proxy.set_down(True)
    with pytest.raises(requests.ConnectionError):
        create(proxy.url, teamcity_admin_token, "refused")
    proxy.lose_next(5)
    proxy.clear()
    assert not proxy.down
    assert create(proxy.url, teamcity_admin_token, "after-clear").status_code == 200
