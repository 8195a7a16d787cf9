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
from rotator.targets.teamcity import ListedParameter, TeamCityClient

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
    from rotator.journal import Journal

    out: dict[str, str] = {}
    for spec in config.credentials:
        if spec.type != "teamcity-token" or (spec.user or "").lower() != user.lower():
            continue
        names = Journal.from_dict(store.read_journal(spec.name)).names()
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


# -- directions: is a standing credential needed between the two systems? --------------------
#
# Airflow -> TeamCity always needs one (TeamCity accepts no Airflow identity): the tokens of
# the teamcity-token credentials that Airflow reads through a connection. TeamCity -> Airflow
# needs none once builds trigger with their own OIDC token ([identity] and its rules); a
# standing credential in that direction is an Airflow credential that sits in TeamCity. Rotator
# sees two kinds: those its config pushes (an airflow-* credential with ``push``), and parameters
# in TeamCity that look like one and that it did not push. Password parameter values cannot be
# read over REST, so "looks like one" is the name: it mentions Airflow, and it is a password
# parameter or names a secret (token, password, ...). A credential under another name, or in a
# project nobody named, is not seen; the report lists the owners it read.

AIRFLOW_TO_TEAMCITY = "airflow_to_teamcity"
TEAMCITY_TO_AIRFLOW = "teamcity_to_airflow"
STANDING = "standing"
NO_STANDING = "no-standing-token"
NOT_SET_UP = "not-set-up"
REPLACED = "identity-replaces-it"
NOT_ROTATORS = "not-pushed-by-rotator"
UNMASKED = "not-a-password-parameter"
_SECRET_WORDS = ("token", "password", "passwd", "secret", "jwt", "key", "credential")


@dataclass(frozen=True)
class Standing:
    """One standing credential of a direction. Never holds a value."""

    kind: str
    """``rotated-token`` (a teamcity-token credential Airflow uses), ``pushed`` (an Airflow
    credential the config pushes into TeamCity) or ``parameter`` (found in TeamCity)."""
    where: str
    owner: str
    """``rotator`` | ``foreign``."""
    credential: str | None
    flag: str | None
    present: bool | None = None
    """For ``pushed``: whether TeamCity holds the parameter now (None: not read)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        what = {
            "rotated-token": f"{self.credential}: TeamCity token of {self.where}, "
            "rotated by Rotator",
            "pushed": f"{self.credential}: pushed to {self.where}, rotated by Rotator"
            + ("" if self.present is not False else " (not there yet)"),
            "parameter": f"{self.where}: no credential in rotator.toml pushes it",
        }[self.kind]
        return what + (f" [flagged: {self.flag}]" if self.flag else "")


@dataclass(frozen=True)
class Direction:
    key: str
    label: str
    state: str
    standing: tuple[Standing, ...]
    identity_rules: tuple[str, ...] = ()
    parameters_read: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    note: str = ""

    @property
    def flagged(self) -> list[Standing]:
        return [s for s in self.standing if s.flag]

    def summary(self) -> str:
        rules = ", ".join(f"'{r}'" for r in self.identity_rules)
        plural = "s" if len(self.identity_rules) > 1 else ""
        if self.state == NO_STANDING:
            return f"{self.label}: no standing token (identity rule{plural} {rules})"
        if self.state == NOT_SET_UP:
            return f"{self.label}: not set up ({self.note})"
        head = f"{self.label}: standing credential ({len(self.standing)})"
        if self.identity_rules:
            head += f"; identity rule{plural} {rules} configured"
        return head + (f"; {self.note}" if self.note else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "summary": self.summary(),
            "standing": [s.as_dict() for s in self.standing],
            "flagged": len(self.flagged),
            "identity_rules": list(self.identity_rules),
            "parameters_read": list(self.parameters_read),
            "errors": list(self.errors),
        }


def airflow_to_teamcity(config: Config, report: StandingReport) -> Direction:
    """The TeamCity tokens Airflow holds: teamcity-token credentials with a ``conn_id``."""
    specs = [s for s in config.credentials if s.type == "teamcity-token" and s.conn_id]
    label = "Airflow -> TeamCity"
    if not specs:
        return Direction(
            AIRFLOW_TO_TEAMCITY,
            label,
            NOT_SET_UP,
            (),
            note="no teamcity-token credential with a conn_id",
        )
    users = {(s.user or "").lower() for s in specs}
    foreign = [t for t in report.flagged if t.user.lower() in users]
    items = tuple(
        Standing(
            "rotated-token", f"user {s.user} (connection {s.conn_id})", "rotator", s.name, None
        )
        for s in specs
    )
    note = f"{len(foreign)} flagged token(s) of its user(s) above" if foreign else ""
    return Direction(AIRFLOW_TO_TEAMCITY, label, STANDING, items, note=note)


def parameter_owners(
    config: Config, projects: list[str], build_types: list[str]
) -> list[tuple[str, str]]:
    """Whose parameters to read: where the config pushes, the projects and build
    configurations its identity rules name (the builds that trigger DAGs), and those asked for."""
    owners = [owner for spec in config.credentials for p in spec.push for owner in _push_owners(p)]
    for rule in _rules(config):
        if rule.project_external_id:
            owners.append(("projects", rule.project_external_id))
        if rule.build_type_external_id:
            owners.append(("buildTypes", rule.build_type_external_id))
    owners += [("projects", p) for p in projects] + [("buildTypes", b) for b in build_types]
    return list(dict.fromkeys(owners))


def teamcity_to_airflow(
    config: Config, client: TeamCityClient, owners: list[tuple[str, str]]
) -> Direction:
    rules = tuple(r.name or r.where for r in _rules(config))
    pushed: dict[tuple[str, str, str], str] = {}  # (kind, owner, parameter) -> credential
    for spec in config.credentials:
        if spec.type.startswith("airflow-"):
            for push in spec.push:
                for kind, owner in _push_owners(push):
                    pushed[(kind, owner, push.parameter)] = spec.name
    pushed_names = {name for (_, _, name) in pushed}
    rotators = {  # every parameter Rotator pushes, of any credential type
        (kind, owner, p.parameter)
        for s in config.credentials
        for p in s.push
        for kind, owner in _push_owners(p)
    }

    found: dict[tuple[str, str], list[Any]] = {}
    errors: list[str] = []
    for kind, owner in owners:
        try:
            found[(kind, owner)] = client.list_parameters(kind, owner)
        except RotatorError as exc:
            errors.append(f"{_owner_label(kind, owner)}: {exc}")
    own_names = {p.name for params in found.values() for p in params if not p.inherited}

    items: list[Standing] = []
    flag = REPLACED if rules else None
    for (kind, owner, name), credential in pushed.items():
        present = None
        if (kind, owner) in found:
            present = any(p.name == name and not p.inherited for p in found[(kind, owner)])
        where = f"{_owner_label(kind, owner)}: {name}"
        items.append(Standing("pushed", where, "rotator", credential, flag, present))
    for (kind, owner), params in found.items():
        for param in params:
            if not _looks_like_airflow_credential(param):
                continue
            if param.inherited and (param.name in own_names or param.name in pushed_names):
                # listed where it lives, or (a guess by name: REST does not say which ancestor
                # it comes from) the parameter Rotator pushes to a parent project
                continue
            if not param.inherited and (kind, owner, param.name) in rotators:
                continue
            where = f"{_owner_label(kind, owner)}: {param.name}"
            if param.inherited:
                where += " (inherited from a parent project)"
            flag = NOT_ROTATORS if param.password else UNMASKED
            items.append(Standing("parameter", where, "foreign", None, flag))
    label = "TeamCity -> Airflow"
    read = tuple(_owner_label(k, o) for k, o in owners)
    if items:
        state = STANDING
    elif rules:
        state = NO_STANDING
    else:
        state = NOT_SET_UP
    note = ""
    if state == NOT_SET_UP:
        note = "no Airflow credential pushed into TeamCity, no [[identity.allow]] rule"
        if config.identity is not None:
            note += " ([identity] allows nothing without one)"
    elif state == STANDING and rules:
        note = "a build token replaces what is flagged"
    return Direction(
        TEAMCITY_TO_AIRFLOW, label, state, tuple(items), rules, read, tuple(errors), note
    )


def directions(
    config: Config,
    client: TeamCityClient,
    report: StandingReport,
    projects: list[str] | None = None,
    build_types: list[str] | None = None,
) -> tuple[Direction, Direction]:
    owners = parameter_owners(config, projects or [], build_types or [])
    return airflow_to_teamcity(config, report), teamcity_to_airflow(config, client, owners)


def _rules(config: Config) -> tuple[Any, ...]:
    identity = config.identity
    return tuple(identity.policy.rules) if identity is not None else ()


def _push_owners(push: Any) -> list[tuple[str, str]]:
    owners = []
    if push.teamcity_project:
        owners.append(("projects", push.teamcity_project))
    if push.teamcity_build_type:
        owners.append(("buildTypes", push.teamcity_build_type))
    return owners


def _owner_label(kind: str, owner: str) -> str:
    return f"{'project' if kind == 'projects' else 'build configuration'} {owner}"


def _looks_like_airflow_credential(param: ListedParameter) -> bool:
    lowered = param.name.lower()
    if "airflow" not in lowered:
        return False
    return param.password or any(word in lowered for word in _SECRET_WORDS)
