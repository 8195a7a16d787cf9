"""The expiry audit of standing TeamCity tokens: ``rotator audit teamcity``.

Rotation fixes the tokens Rotator manages; a security team also wants the list of the others:
tokens people made by hand that never expire, or that will expire and break something nobody
remembers. This lists every token of the given users (default: the users of the config's
teamcity-token credentials, those of ``[audit.teamcity] users`` and the admin whose token
Rotator uses) with name, created and expires, and who owns it:

- ``rotator``: a name Rotator owns for one of its credentials (``rotator-<credential>-<rotation
  id>``, exactly) that its store recorded;
- ``rotator-unrecorded``: such a name the store never recorded (a second install, a store
  opened from the wrong place: see DESIGN.md; Rotator never revokes those);
- ``foreign``: everything else.

A foreign (or unrecorded) token is flagged ``never-expires`` or ``expires-soon`` (within
``within``, already expired included). Read-only: it revokes nothing, writes nothing; the
TeamCity simulator's contract (``GET /app/rest/users/{user}/tokens`` with fields) is all it
needs. TeamCity has no call in that contract to list every user, so users are named, not
discovered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rotator.config import Config
from rotator.errors import RotatorError
from rotator.issuers import owns
from rotator.teamcity import TeamCityClient

NEVER = "never-expires"
SOON = "expires-soon"


@dataclass(frozen=True)
class StandingToken:
    user: str
    name: str
    created: datetime | None
    expires: datetime | None
    owner: str
    """``rotator`` | ``rotator-unrecorded`` | ``foreign``."""
    credential: str | None
    flag: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StandingReport:
    users: tuple[str, ...]
    within: timedelta
    tokens: tuple[StandingToken, ...]
    errors: tuple[str, ...]
    """Users whose tokens could not be listed, each with the reason."""

    @property
    def flagged(self) -> list[StandingToken]:
        return [t for t in self.tokens if t.flag]


def default_users(config: Config, client: TeamCityClient) -> list[str]:
    named = [s.user for s in config.credentials if s.type == "teamcity-token" and s.user]
    named += list(config.standing.users)
    admin = client.current_user().get("username")
    if isinstance(admin, str) and admin:
        named.append(admin)
    seen: dict[str, str] = {}
    for user in named:  # TeamCity user names are case-insensitive
        seen.setdefault(user.lower(), user)
    return list(seen.values())


def recorded_names(store: Any, config: Config, user: str) -> dict[str, str]:
    """Target names the store knows as Rotator's, for ``user``: name -> credential."""
    from rotator.engine import _recorded_names

    out: dict[str, str] = {}
    for spec in config.credentials:
        if spec.type != "teamcity-token" or (spec.user or "").lower() != user.lower():
            continue
        names = _recorded_names(store.read_journal(spec.name) or {})
        names |= {v.meta.get("target_name") for v in store.versions(spec.path)} - {None}
        out.update(dict.fromkeys(names, spec.name))
    return out


def audit(
    config: Config,
    client: TeamCityClient,
    store: Any,
    users: list[str],
    within: timedelta,
    now: datetime,
) -> StandingReport:
    tokens: list[StandingToken] = []
    errors: list[str] = []
    for user in users:
        try:
            listed = client.list_tokens(user)
            recorded = recorded_names(store, config, user)
        except RotatorError as exc:
            errors.append(f"{user}: {exc}")
            continue
        for token in sorted(listed, key=lambda t: t.name):
            tokens.append(_classify(config, user, token, recorded, within, now))
    return StandingReport(tuple(users), within, tuple(tokens), tuple(errors))


def _classify(
    config: Config,
    user: str,
    token: Any,
    recorded: dict[str, str],
    within: timedelta,
    now: datetime,
) -> StandingToken:
    credential = recorded.get(token.name)
    owner = "rotator" if credential else "foreign"
    if credential is None:
        for spec in config.credentials:
            same_user = (spec.user or "").lower() == user.lower()
            if spec.type == "teamcity-token" and same_user and owns(spec, token.name):
                owner, credential = "rotator-unrecorded", spec.name
    flag = None
    if owner != "rotator":
        if token.expires is None:
            flag = NEVER
        elif token.expires - now <= within:
            flag = SOON
    return StandingToken(user, token.name, token.created, token.expires, owner, credential, flag)
