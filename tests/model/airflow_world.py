"""The Airflow credentials in the model: ``airflow-password`` (the service account's password,
set through the FAB users API) and ``airflow-token`` (a JWT logged in with that password, pushed
to a TeamCity parameter), against a real Airflow 3.3 API server reached through an
``OutageProxy`` (Airflow going away at a protocol step, or answers lost after Airflow acted on
them), on a real store.

What the model checks besides the common rules (``World``):

- I5 Airflow's password is one the store holds: ``current``, or ``pending`` while the journal
  has the rotation that staged it. Found out by logging in with each candidate (directly, not
  through the proxy).
- I1 the stored ``current`` password logs in, unless the journal still holds a rotation (a
  change Airflow may have accepted before it went away: the next run that reaches Airflow
  settles it, and a clean run must have); the stored JWT is accepted by the API.
- I3 the admin login (Rotator's bootstrap credential) still works.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import requests

from rotator.spec import AirflowSettings
from rotator.targets.airflow_api import AirflowApi
from tests.fixtures.leaks import register_secret
from tests.fixtures.outage import OutageProxy
from tests.model.world import (
    FEATURES,
    Features,
    I1CurrentBroken,
    I1PasswordNotCurrent,
    I1RefusedUnnoticed,
    I3ForeignRevoked,
    I5PasswordLost,
    I5PasswordLostByRollback,
    Install,
    World,
)

PASSWORD = "bot-password"
TOKEN = "bot-token"
BOT = "teamcity-bot"


def strong_password() -> str:
    return "Aa1-" + secrets.token_urlsafe(24)


class AirflowWorld(World):
    """One install managing the bot's password and a JWT logged in with it."""

    def __init__(
        self,
        sim: Any,
        admin_token: str,
        store_kind: str,
        servers: dict[str, Any],
        tmp: Path,
        airflow: Any,
        proxy: OutageProxy,
        *,
        features: Features = FEATURES,
    ) -> None:
        super().__init__(
            sim, admin_token, store_kind, servers, tmp, initial=None, push=True, features=features
        )
        self.checked_at_run = -1
        self.airflow = airflow
        self.proxy = proxy
        proxy.clear()
        self.api = AirflowApi(AirflowSettings(url=airflow.url, timeout=10, retries=2))
        # Rotator takes the account over: a known password, stored as current.
        start = strong_password()
        self.secrets.add(start)
        self.pw_seen = {start}
        register_secret(start)
        self.api.set_password(BOT, start)
        install = self.add_install("A", [PASSWORD, TOKEN])
        spec = install.specs[PASSWORD]
        install.store.put_current(
            spec.path,
            {"conn_type": "http", "host": proxy.url, "login": BOT, "password": start},
            expected=None,
        )

    def credential_table(self, name: str) -> dict[str, Any]:
        if name == PASSWORD:
            return {
                "name": PASSWORD,
                "type": "airflow-password",
                "user": BOT,
                "conn_id": "airflow_bot",
                "every": "30d",
            }
        return {
            "name": TOKEN,
            "type": "airflow-token",
            "login_from": PASSWORD,
            "every": "12h",
            "push": [{"teamcity_project": "DataPipelines", "parameter": "env.AIRFLOW_API_TOKEN"}],
        }

    def raw_config(self, install: Install) -> dict[str, Any]:
        raw = super().raw_config(install)
        raw["airflow"] = {"url": self.proxy.url, "timeout": 3, "retries": 1}
        return raw

    # -- the invariants --------------------------------------------------------------------
    def login(self, user: str, password: str) -> bool:
        response = requests.post(
            f"{self.airflow.url}/auth/token",
            json={"username": user, "password": password},
            timeout=10,
        )
        return response.status_code == 201

    def jwt_works(self, token: str) -> bool:
        response = requests.get(
            f"{self.airflow.url}/api/v2/dags",
            params={"limit": "1"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return response.status_code == 200

    def check(self) -> None:
        self.raise_recorded()
        if self.checked_at_run == self.runs:
            return  # no run since the last check: nothing touched Airflow or the store
        self.checked_at_run = self.runs
        install = self.installs["A"]
        for spec in (install.specs[PASSWORD], install.specs[TOKEN]):
            current = self.read(install, spec.path)
            if current is not None:
                self._note_current(("A", spec.name), current)
        pw = install.specs[PASSWORD]
        current = self.read(install, pw.path)
        pending = self.read(install, pw.path, "pending")
        journal = install.store.read_journal(pw.name) or {}
        in_flight = bool(journal.get("rotation"))
        stored = str(current.value.get("password")) if current is not None else None
        for version in (current, pending):
            if version is not None:
                self.pw_seen.add(str(version.value.get("password")))
                self.secrets.add(str(version.value.get("password")))
        hand_set = self.broken.get(("A", PASSWORD))
        if hand_set is not None:
            if stored is not None and self.login(BOT, stored):
                self.broken.pop(("A", PASSWORD), None)  # Rotator has taken the account back
            else:
                last = self.last_runs.get(("A", PASSWORD))
                if (
                    last is not None
                    and last.seq > hand_set[1]
                    and last.call == "run_pass"
                    and last.ok
                    and not in_flight
                ):
                    raise I1RefusedUnnoticed(
                        "a daemon pass left a current password that Airflow refuses (changed "
                        "by hand) in place"
                    )
                stored = None  # refused until Rotator notices; Airflow holds the hand-set one
        if (stored is not None and not self.login(BOT, stored)) or (
            stored is None and hand_set is None
        ):
            staged = str(pending.value.get("password")) if pending is not None else None
            if staged is not None and self.login(BOT, staged):
                if not in_flight:
                    raise I1PasswordNotCurrent(
                        "Airflow holds the pending password, the store's current does not log "
                        "in, and no rotation is left in the journal to settle it"
                    )
            else:
                held = next(
                    (
                        p
                        for p in self.passwords()
                        if p not in (stored, staged) and self.login(BOT, p)
                    ),
                    None,
                )
                where = "a password the store no longer has" if held else "a password never seen"
                if self.last_call == "rollback":
                    raise I5PasswordLostByRollback(
                        f"after a rollback, Airflow holds {where}: the store's current (the "
                        "rolled-back password) does not log in, nothing is pending"
                    )
                raise I5PasswordLost(
                    f"Airflow holds {where}: neither the store's current nor its pending "
                    "password logs in (the service account is locked out of the store's view)"
                )
            if not in_flight:
                raise I1PasswordNotCurrent("the store's current password does not log in")
        tok = self.read(install, install.specs[TOKEN].path)
        if tok is not None and not self.jwt_works(str(tok.value.get("password"))):
            raise I1CurrentBroken("the stored Airflow JWT is refused by the API")
        if not self.login(*self.airflow.admin):
            raise I3ForeignRevoked("the Airflow admin login (Rotator's bootstrap) stopped working")

    def change_password_by_hand(self) -> None:
        """An administrator resets the bot's password in Airflow's UI (outside Rotator)."""
        value = strong_password()
        self.secrets.add(value)
        register_secret(value)
        self.api.set_password(BOT, value)
        self.broken[("A", PASSWORD)] = (value, self.runs)
        self.checked_at_run = -1

    def passwords(self) -> list[str]:
        return sorted(self.pw_seen | self.staged)
