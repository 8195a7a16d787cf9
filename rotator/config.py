"""``rotator.toml``: read once, validated whole, turned into ``rotator.spec`` objects.

Where: ``--config PATH``, else ``$ROTATOR_CONFIG``, else ``./rotator.toml``; with none of
them, the embedded defaults (the file store under ``.rotator/``, no credentials). Every error
names the file, the key (``credentials[1].every``) and what was expected, and raises
``ConfigError`` (exit code 2) before anything is changed anywhere.

No secret may be written in the file: keys that hold secrets (``token``, ``password``,
``secret_id``...) and values that look like tokens are refused with a hint to use ``*_env``,
``*_file`` or the store.
"""

from __future__ import annotations

import inspect
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from backends.store import store_class
from rotator.durations import parse_duration
from rotator.errors import ConfigError
from rotator.spec import AirflowSettings, CredentialSpec, PushTarget, TeamCitySettings

ISSUER_TYPES = ("teamcity-token", "airflow-password", "airflow-token")
SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "secret",
        "secret_id",
        "api_key",
        "apikey",
        "access_key",
        "secret_access_key",
        "aws_secret_access_key",
        "private_key",
        "client_secret",
        "jwt",
    }
)
_SECRET_VALUE = re.compile(
    r"^(eyJ[\w-]{8,}\.[\w-]{8,}\.|hvs\.|hvb\.|s\.[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|"
    r"eyJ0eXAiOiAiVENWMiJ9)"
)
MAX_LOCK_TTL = timedelta(seconds=30)
DEFAULT_STORE = {"kind": "file", "path": ".rotator/store.db"}


@dataclass(frozen=True)
class EngineSettings:
    """``[rotator]``: how rotations run (all optional)."""

    parallel: int = 8
    lock_ttl: timedelta = timedelta(seconds=30)
    audit_file: str | None = None
    push_attempts: int = 3


@dataclass(frozen=True)
class Config:
    source: str
    store_kind: str
    store_options: dict[str, Any]
    teamcity: TeamCitySettings | None
    airflow: AirflowSettings | None
    credentials: tuple[CredentialSpec, ...]
    engine: EngineSettings = field(default_factory=EngineSettings)

    def credential(self, name: str) -> CredentialSpec:
        for spec in self.credentials:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.credentials) or "none configured"
        raise ConfigError(f"{self.source}: unknown credential {name!r} (known: {known})")

    def select(self, names: list[str]) -> list[CredentialSpec]:
        return [self.credential(n) for n in dict.fromkeys(names)]

    def open_store(self) -> Any:
        from backends.store import open_store

        return open_store(self.store_kind, **self.store_options)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get("ROTATOR_CONFIG"):
        return Path(os.environ["ROTATOR_CONFIG"])
    local = Path("rotator.toml")
    return local if local.exists() else None


def load(explicit: str | os.PathLike[str] | None = None) -> Config:
    path = config_path(explicit)
    if path is None:
        return parse({"store": dict(DEFAULT_STORE)}, "<embedded defaults>")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path))


class _Table:
    """One TOML table being validated: every key read is ticked off, leftovers are errors."""

    def __init__(self, source: str, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where} must be a table")
        self.source, self.where, self.data = source, where, data
        self.used: set[str] = set()
        for key, value in data.items():
            _refuse_secret(source, f"{where}.{key}" if where else key, key, value)

    def err(self, key: str, expected: str) -> ConfigError:
        got = self.data.get(key)
        # Name the type, never the value: a secret pasted into the wrong key must not be echoed.
        shown = type(got).__name__ if isinstance(got, list | dict | str) else repr(got)
        return ConfigError(f"{self.source}: {self.key(key)}: expected {expected}, got {shown}")

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.source}: {self.key(key)} is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind in (int, float):
            raise self.err(key, kind.__name__)
        if not isinstance(value, kind):
            name = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.err(key, name)
        if isinstance(value, str) and not value.strip() and required:
            raise self.err(key, "a non-empty string")
        return value

    def duration(
        self, key: str, default: timedelta | None = None, *, allow_zero: bool = False
    ) -> timedelta | None:
        self.used.add(key)
        if key not in self.data:
            return default
        return parse_duration(
            self.data[key], where=f"{self.source}: {self.key(key)}", allow_zero=allow_zero
        )

    def done(self, allowed_extra: set[str] | None = None) -> None:
        unknown = sorted(set(self.data) - self.used - (allowed_extra or set()))
        if unknown:
            raise ConfigError(
                f"{self.source}: unknown key(s) in {self.where or 'the top level'}: "
                + ", ".join(unknown)
            )


def _refuse_secret(source: str, where: str, key: str, value: Any) -> None:
    lowered = key.lower()
    if lowered in SECRET_KEYS:
        raise ConfigError(
            f"{source}: {where}: secrets do not belong in the config file; name an environment "
            f"variable with {key}_env, a file with {key}_file, or keep it in the store"
        )
    if lowered.endswith("_env") and isinstance(value, str):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ConfigError(
                f"{source}: {where}: expected the NAME of an environment variable (like "
                "TEAMCITY_TOKEN); the secret itself must not be written in the config file"
            )
        return
    if isinstance(value, list):
        for item in value:
            _refuse_secret(source, where, key, item)
        return
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            _refuse_secret(source, f"{where}.{inner_key}", str(inner_key), inner)
        return
    if isinstance(value, str) and not lowered.endswith(("_file", "url", "path")):
        if _SECRET_VALUE.match(value.strip()):
            raise ConfigError(
                f"{source}: {where}: this value looks like a secret (a token or key); use *_env "
                "or *_file to point at it instead"
            )


def _store(source: str, data: Any) -> tuple[str, dict[str, Any]]:
    table = _Table(source, "store", data)
    kind = table.get("kind", str, "file")
    try:
        cls = store_class(kind)
    except ConfigError as exc:
        raise ConfigError(f"{source}: store.kind: {exc}") from None
    params = inspect.signature(cls).parameters
    allowed = {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD}
    if kind == "vault":
        from backends.vault_auth import VaultAuth

        allowed |= set(VaultAuth.__dataclass_fields__) - {"method"}
    options = {k: v for k, v in table.data.items() if k != "kind"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in [store] for kind {kind!r}: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return kind, options


def _settings(source: str, name: str, data: Any, cls: type) -> Any:
    table = _Table(source, name, data)
    values: dict[str, Any] = {}
    for field_name, f in cls.__dataclass_fields__.items():
        default = f.default
        expected = {"timeout": (int, float), "retries": int, "verify_tls": bool}.get(
            field_name, str
        )
        value = table.get(field_name, expected, default, required=field_name == "url")
        if value is not None:
            values[field_name] = value
    table.done()
    url = values["url"]
    if not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"{source}: {name}.url: expected an http(s) URL, got {url!r}")
    return cls(**values)


def _permissions(table: _Table) -> tuple[dict[str, str], ...]:
    raw = table.get("permissions", list, [])
    out = []
    for i, item in enumerate(raw):
        entry = _Table(table.source, f"{table.where}.permissions[{i}]", item)
        out.append(
            {
                "project": entry.get("project", str, required=True),
                "permission": entry.get("permission", str, required=True),
            }
        )
        entry.done()
    return tuple(out)


def _push(table: _Table) -> tuple[PushTarget, ...]:
    raw = table.get("push", list, [])
    out = []
    for i, item in enumerate(raw):
        entry = _Table(table.source, f"{table.where}.push[{i}]", item)
        target = PushTarget(
            parameter=entry.get("parameter", str, required=True),
            teamcity_project=entry.get("teamcity_project", str),
            teamcity_build_type=entry.get("teamcity_build_type", str),
            field=entry.get("field", str, "password"),
            settings_token=entry.get("settings_token", str),
        )
        entry.done()
        if not (target.teamcity_project or target.teamcity_build_type):
            raise ConfigError(
                f"{table.source}: {entry.where}: push to nowhere: set teamcity_project or "
                "teamcity_build_type"
            )
        out.append(target)
    return tuple(out)


def _credential(
    source: str, index: int, data: Any, connections_prefix: str, state_prefix: str
) -> CredentialSpec:
    table = _Table(source, f"credentials[{index}]", data)
    name = table.get("name", str, required=True)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise table.err("name", "letters, digits, '.', '_' or '-' (at most 64)")
    kind = table.get("type", str, required=True)
    if kind not in ISSUER_TYPES:
        raise table.err("type", "one of " + ", ".join(ISSUER_TYPES) + " (no issuer for that type)")
    conn_id = table.get("conn_id", str)
    every = table.duration("every", timedelta(days=7))
    lifetime = table.duration("lifetime")
    grace = table.duration("grace", timedelta(days=1), allow_zero=True)
    lead = table.duration("lead")
    spec = CredentialSpec(
        name=name,
        type=kind,
        conn_id=conn_id,
        user=table.get("user", str),
        every=every,  # type: ignore[arg-type]
        lifetime=lifetime,
        grace=grace,  # type: ignore[arg-type]
        lead=lead,
        permissions=_permissions(table),
        login_from=table.get("login_from", str),
        push=_push(table),
        # Without a conn_id the value is not an Airflow connection: it is kept beside Rotator's
        # state, where Airflow's read-only policy cannot reach it (e.g. a JWT only TeamCity uses).
        path=table.get("path", str)
        or (f"{connections_prefix}/{conn_id}" if conn_id else f"{state_prefix}/values/{name}"),
    )
    table.done()
    where = f"{source}: credentials[{index}] ({name})"
    if kind in ("teamcity-token", "airflow-password") and not spec.user:
        raise ConfigError(f"{where}: user is required for type {kind}")
    if kind == "airflow-token" and not spec.login_from:
        raise ConfigError(f"{where}: login_from is required for type airflow-token")
    if kind != "airflow-token" and spec.login_from:
        raise ConfigError(f"{where}: login_from only applies to type airflow-token")
    if spec.lifetime is not None and spec.every >= spec.lifetime:
        raise ConfigError(f"{where}: every must be shorter than lifetime, or it expires first")
    if spec.lead is not None and spec.lifetime is not None and spec.lead >= spec.lifetime:
        raise ConfigError(f"{where}: lead must be shorter than lifetime")
    if kind == "teamcity-token" and spec.lifetime is not None and spec.grace >= spec.lifetime:
        raise ConfigError(f"{where}: grace must be shorter than lifetime")
    return spec


def parse(data: dict[str, Any], source: str) -> Config:
    top = _Table(source, "", data)
    kind, store_options = _store(source, top.get("store", dict, dict(DEFAULT_STORE)))
    top.used.add("store")
    connections_prefix = store_options.get("connections_prefix", "airflow/connections")
    state_prefix = store_options.get("state_prefix", "rotator")
    teamcity = airflow = None
    if "teamcity" in data:
        teamcity = _settings(source, "teamcity", top.get("teamcity", dict), TeamCitySettings)
    if "airflow" in data:
        airflow = _settings(source, "airflow", top.get("airflow", dict), AirflowSettings)
    engine = EngineSettings()
    if "rotator" in data:
        table = _Table(source, "rotator", top.get("rotator", dict))
        parallel = table.get("parallel", int, 8)
        if not 1 <= parallel <= 64:
            raise table.err("parallel", "an integer from 1 to 64")
        lock_ttl = table.duration("lock_ttl", timedelta(seconds=30))
        if lock_ttl > MAX_LOCK_TTL:  # type: ignore[operator]
            raise table.err("lock_ttl", "at most 30s (the lease is renewed while work goes on)")
        engine = EngineSettings(parallel, lock_ttl, table.get("audit_file", str))  # type: ignore[arg-type]
        table.done()
    raw_credentials = top.get("credentials", list, [])
    top.done()
    credentials = tuple(
        _credential(source, i, item, connections_prefix, state_prefix)
        for i, item in enumerate(raw_credentials)
    )
    _cross_check(source, credentials, teamcity, airflow)
    return Config(source, kind, store_options, teamcity, airflow, credentials, engine)


def _cross_check(
    source: str,
    credentials: tuple[CredentialSpec, ...],
    teamcity: TeamCitySettings | None,
    airflow: AirflowSettings | None,
) -> None:
    names: dict[str, CredentialSpec] = {}
    paths: dict[str, str] = {}
    for spec in credentials:
        if spec.name in names:
            raise ConfigError(f"{source}: credential name {spec.name!r} is used twice")
        if spec.path in paths:
            raise ConfigError(
                f"{source}: credentials {paths[spec.path]!r} and {spec.name!r} both store to "
                f"{spec.path!r}"
            )
        names[spec.name], paths[spec.path] = spec, spec.name
    for spec in credentials:
        needs_teamcity = spec.type == "teamcity-token" or bool(spec.push)
        if needs_teamcity and teamcity is None:
            raise ConfigError(f"{source}: credential {spec.name!r} needs a [teamcity] table")
        if spec.type in ("airflow-password", "airflow-token") and airflow is None:
            raise ConfigError(f"{source}: credential {spec.name!r} needs an [airflow] table")
        if spec.login_from is not None:
            login = names.get(spec.login_from)
            if login is None:
                raise ConfigError(
                    f"{source}: credential {spec.name!r}: login_from {spec.login_from!r} names "
                    "no credential of this file"
                )
            if login.type != "airflow-password":
                raise ConfigError(
                    f"{source}: credential {spec.name!r}: login_from must name an "
                    f"airflow-password credential, {spec.login_from!r} is {login.type}"
                )
