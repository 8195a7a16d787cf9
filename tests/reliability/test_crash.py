"""Kill the rotator with SIGKILL at every step of the protocol, on every store, then run it
again: it must converge to exactly one working ``current``, keep ``previous`` working through
its grace, leave no token at TeamCity that the store does not know, and log the whole story."""

from __future__ import annotations

import json
import signal

import pytest
import requests

from backends.errors import NotFound
from rotator.faults import POINTS
from tests.reliability.conftest import CREDENTIAL

# "apply" belongs to issuers that stage before touching the target (Airflow passwords).
CRASH_POINTS = [p for p in POINTS if not p.endswith(":apply")]
# Every point on the file store; on OpenBao and moto, the points after which the stored state
# differs (the others repeat the file store's case with the same store calls).
STATEFUL = {
    "after:intent",
    "after:mint",
    "after:stage",
    "after:verify",
    "after:promote",
    "after:push",
    "after:retire",
}
PATH_SUFFIX = "airflow/connections/teamcity_default"


def works(sim, token: str) -> bool:
    r = requests.get(
        f"{sim.url}/app/rest/server", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return r.status_code == 200


def value(store, path: str, stage: str = "current") -> dict | None:
    try:
        return store.read(path, stage).value
    except NotFound:
        return None


CASES = [("file", p) for p in CRASH_POINTS] + [
    (kind, p) for kind in ("vault", "aws") for p in CRASH_POINTS if p in STATEFUL
]


@pytest.mark.parametrize(("store_kind", "point"), CASES)
def test_sigkill_at_every_step_converges(rotator_cli, store, teamcity_sim, point):
    path = f"{store.connections_prefix}/teamcity_default"
    assert path.endswith(PATH_SUFFIX)
    store.bind(path, CREDENTIAL)  # read its stage state where rotator.toml's readers do
    # settle 0s: the token pushed out of previous is retired within the crashed rotation itself
    config = rotator_cli.config
    config.write_text(config.read_text().replace('grace = "1d"', 'grace = "1d"\nsettle = "0s"'))
    for _ in range(2):  # a current and a previous, so the next rotation also retires one
        assert rotator_cli("rotate", CREDENTIAL, "--force").returncode == 0

    killed = rotator_cli("rotate", CREDENTIAL, "--force", fault=point)
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-500:])

    healed = rotator_cli("rotate", CREDENTIAL, "--json", wait_for_lock=15)
    assert healed.returncode == 0, (point, healed.stdout, healed.stderr[-1500:])

    current = store.read(path)
    assert works(teamcity_sim, current.value["password"]), "current must work at the target"
    stored = {current.meta["target_name"]}
    previous = value(store, path, "previous")
    if previous is not None:
        assert works(teamcity_sim, previous["password"]), "previous must work through its grace"
        stored.add(store.read(path, "previous").meta["target_name"])
    journal = store.read_journal(CREDENTIAL) or {}
    assert "rotation" not in journal, "the interrupted rotation must be finished or undone"
    stored |= {e["target_name"] for e in journal.get("retire") or []}  # settling, recorded
    alive = {t.name for t in teamcity_sim.state.find_user("airflow-bot").tokens.values()}
    assert alive <= stored, f"tokens at TeamCity the store does not know: {sorted(alive - stored)}"
    assert len(alive) <= 2, "nothing settles (settle 0s): current and previous"
    pushed = teamcity_sim.state.projects["DataPipelines"].parameters["env.POLL_TOKEN"].value
    matches = pushed == current.value["password"]
    assert matches, "the sink must end up with the current value"

    events = [json.loads(line) for line in rotator_cli.audit.read_text().splitlines()]
    killed_steps = {
        e["step"] for e in events if e.get("actor", {}).get("pid") and e["step"] != "lock"
    }
    assert killed_steps, "the audit trail records the steps"
    step = point.split(":")[1]
    if point.startswith("after:") and step not in ("lock", "unlock", "retire", "push"):
        assert any(e["step"] == step and e["outcome"] == "ok" for e in events), (
            f"no audit event for {step}"
        )
