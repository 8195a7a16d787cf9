"""``rotator.toml``: read once, validated whole, turned into ``rotator.spec`` objects.

Where: ``--config PATH``, else ``$ROTATOR_CONFIG``, else ``./rotator.toml``; with none of
them, the embedded defaults (the file store under ``.rotator/`` of the working directory, no
credentials). Every error names the file, the key (``credentials[1].every``) and what was
expected, never the value written there, and raises ``ConfigError`` (exit code 2) before
anything is changed anywhere. An unknown key is answered with the closest known one
("did you mean every?").

Relative paths in the file (``[store] path``, ``key_file``, ``token_file``, ``ca_bundle`` and
the other ``*_file`` keys, ``[teamcity] token_file``, ``[airflow] password_file``,
``[rotator] audit_file``, and the default ``.rotator/store.db``) resolve against the directory
of the config file, never the working directory.

No secret may be written in the file: keys that hold secrets (``token``, ``password``,
``secret_id``...), values that look like tokens and URLs with a ``user:password@`` part are
refused with a hint to use ``*_env``, ``*_file`` or the store. Plain ``http://`` or
``verify_tls = false`` towards a host other than loopback is accepted with a warning
(``Config.warnings``), which the CLI prints.

Keys of a ``[[credentials]]`` entry:

- ``name``, ``type`` (``teamcity-token`` | ``airflow-password`` | ``airflow-token``): required;
- ``user``: the account at the target (required for teamcity-token and airflow-password);
- ``conn_id``: store it as this Airflow connection, at ``<connections_prefix>/<conn_id>``;
  ``path``: or at this store path (never inside the store's ``state_prefix``);
- ``every`` (default ``7d``): rotate after; ``lifetime``: the value's own expiry at the target;
  ``lead`` (default a fifth of ``lifetime``): rotate when it expires within this;
- ``grace`` (default ``1d``, ``0s`` allowed): keep ``previous`` this long, then revoke it;
- ``settle`` (default ``15m``, or ``grace`` if shorter; at most ``grace``): never revoke a value
  that stopped being ``current`` less than this ago (consumers cache it);
- ``max_alive`` (integer >= 2, default 4): Rotator credentials alive at the target at once
  for this one, settling ones included;
- ``verify_every`` (default ``1h``): how often the daemon proves ``current`` still works;
- ``permissions``, ``login_from``, ``push``: scoped tokens, the airflow-password credential an
  airflow-token logs in with, and the TeamCity parameters the value is pushed to;
- ``announce`` (default false): emit an Airflow asset event after each rotation.

``[[notify]]`` tables (``rotator.notify``): ``url_env`` or ``url_file`` (an apprise URL carries
its service's token, so an inline ``url`` is refused like any other secret), ``on`` (events from
``NOTIFY_EVENTS``), ``credentials`` (names of this file; default all). ``[audit.teamcity]``:
``every``, ``users``, ``within`` for the daemon's standing-token audit (``rotator.standing``).
``[identity]`` and its ``[[identity.allow]]`` rules: ``rotator.identity.settings``.
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import math
import os
import re
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.store import store_class
from rotator.durations import parse_duration
from rotator.errors import ConfigError
from rotator.spec import (
    NOTIFY_EVENTS,
    AirflowSettings,
    CredentialSpec,
    NotifySpec,
    PushTarget,
    StandingAudit,
    TeamCitySettings,
)

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
DEFAULT_SETTLE = timedelta(minutes=15)
MAX_TIMEOUT = 3600.0
"""Seconds: a longer network timeout is a typo (a run would hang for hours)."""
MAX_RETRIES = 100
TOP_LEVEL_KEYS = (
    *("store", "teamcity", "airflow", "rotator", "credentials", "notify", "audit"),
    "identity",
)
PREFIX_KEYS = ("connections_prefix", "variables_prefix", "config_prefix", "state_prefix")
_COMMAND_OPTIONS = frozenset({"read_only", "missing_ok"})
"""Store parameters the command chooses (``Config.open_store``), never rotator.toml."""
_FILE_KEYS = ("path", "ca_bundle", "kubernetes_token_path")
"""Store options holding a local file path (besides every ``*_file``), resolved against the
config file's directory."""


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
    warnings: tuple[str, ...] = ()
    """Accepted but risky settings (plain http or no TLS checks towards another host), each a
    sentence naming the file and key; the CLI prints them to stderr."""
    notify: tuple[NotifySpec, ...] = ()
    standing: StandingAudit = field(default_factory=StandingAudit)
    identity: Any = None
    """``[identity]`` (``rotator.identity.settings.IdentitySettings``), None when absent."""

    def credential(self, name: str) -> CredentialSpec:
        for spec in self.credentials:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.credentials) or "none configured"
        raise ConfigError(f"{self.source}: unknown credential {name!r} (known: {known})")

    def select(self, names: list[str]) -> list[CredentialSpec]:
        return [self.credential(n) for n in dict.fromkeys(names)]

    def open_store(self, read_only: bool = False) -> Any:
        """The configured store; ``read_only`` for commands that only read: the file store then
        creates nothing and reads a database not created yet as empty. Vault and AWS read with
        the rights they are given, so they take no such option."""
        from backends.store import open_store

        options = dict(self.store_options)
        if read_only and "read_only" in inspect.signature(store_class(self.store_kind)).parameters:
            options.update(read_only=True, missing_ok=True)
        return self.bind(open_store(self.store_kind, **options))

    def bind(self, store: Any) -> Any:
        """Tell ``store`` which credential's lock each document belongs to (``Store.bind``),
        so every reader opened from this config finds the stage state where rotations keep it."""
        for spec in self.credentials:
            store.bind(spec.path, spec.name)
        return store


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
        text = path.read_bytes().decode("utf-8")  # bytes: a bare CR is TOML's to judge
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
    # The directory as the user names it (absolute, symlinks kept), not the working directory.
    return parse(data, str(path), base_dir=path.absolute().parent)


def _unknown(keys: Iterable[str], known: Iterable[str]) -> str:
    """``"evrey (did you mean every?), colour"``."""
    known = sorted(set(known))
    out = []
    for key in sorted(keys):
        close = difflib.get_close_matches(key, known, n=1)
        out.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return ", ".join(out)


class _Table:
    """One TOML table being validated: every key read is ticked off, leftovers are errors."""

    def __init__(self, source: str, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where} must be a table")
        self.source, self.where, self.data = source, where, data
        self.used: set[str] = set()
        for key, value in data.items():
            _refuse_secret(source, f"{where}.{key}" if where else key, key, value)

    def err(self, key: str, expected: str, *, show_type: bool = True) -> ConfigError:
        # Name the type, never the value: a secret pasted into the wrong key must not be echoed.
        got = f", got {_type_name(self.data.get(key))}" if show_type else ""
        return ConfigError(f"{self.source}: {self.key(key)}: expected {expected}{got}")

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
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.err(key, " or ".join(k.__name__ for k in kinds))
        if isinstance(value, str) and not value.strip() and required:
            raise self.err(key, "a non-empty string")
        return value

    def number(self, key: str, default: float) -> float:
        """A timeout in seconds: a finite number above zero, at most ``MAX_TIMEOUT``."""
        value = self.get(key, (int, float), default)
        if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
            raise self.err(
                key, f"a number of seconds above 0 and at most {MAX_TIMEOUT:g}", show_type=False
            )
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

    def file(self, key: str, base_dir: Path | None) -> str | None:
        """A local path, resolved against the config file's directory."""
        value = self.get(key, str)
        if value is None:
            return None
        return _local_path(self.source, self.key(key), value, base_dir)

    def done(self, known: Iterable[str] = ()) -> None:
        unknown = set(self.data) - self.used - set(known)
        if unknown:
            raise ConfigError(
                f"{self.source}: unknown key(s) in {self.where or 'the top level'}: "
                + _unknown(unknown, self.used | set(known))
            )


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string"}.get(
        type(value), type(value).__name__
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


# -- values that need more than a type ------------------------------------------------------


def _local_path(source: str, where: str, value: str, base_dir: Path | None) -> str:
    """``value`` as a path: relative ones resolve against ``base_dir`` (the config file's
    directory); without a config file (``base_dir`` None) they stay relative to the working
    directory."""
    if not value.strip() or "\x00" in value:
        raise ConfigError(f"{source}: {where}: expected a file path")
    path = Path(os.path.expanduser(value))  # unlike Path.expanduser, never raises
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    return str(path)


def _store_path(source: str, where: str, value: str) -> str:
    """A store path (or prefix): ``/``-separated names, no empty part, no ``.``/``..``, no
    leading ``/``; the same rule as ``backends.store.check_path``, said with the key."""
    parts = value.split("/")
    if (
        not value
        or any(p in ("", ".", "..") for p in parts)
        or any(ch in value for ch in "\\?#")
        or any(ch.isspace() or not ch.isprintable() for ch in value)
    ):
        raise ConfigError(
            f"{source}: {where}: expected a store path of '/'-separated names (no leading '/', "
            "no empty part, no '.' or '..', no spaces)"
        )
    return value


def _inside(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(source: str, where: str, value: str, verify: bool, verify_key: str) -> list[str]:
    """Refuse anything but a plain ``http(s)://host[:port][/path]`` URL, without echoing it
    (a URL is where passwords get pasted); return the warnings it deserves."""
    shape = "an http(s) URL like https://host:port (no user:password@, ?query or #fragment)"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{source}: {where}: expected {shape}") from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"{source}: {where}: the URL carries a user name or password (user:password@host); "
            "that is a secret in the config file: remove it, the credentials come from *_env, "
            "*_file or the store"
        )
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "?" in value
        or "#" in value
        or any(ch.isspace() or not ch.isprintable() for ch in value)
    ):
        raise ConfigError(f"{source}: {where}: expected {shape}")
    host = parts.hostname
    warnings = []
    if not _is_loopback(host):
        if parts.scheme == "http":
            warnings.append(
                f"{source}: {where}: plain http:// to {host}: credentials cross the network "
                "unencrypted; use https://"
            )
        if not verify:
            warnings.append(
                f"{source}: {where}: {verify_key} = false for {host}: TLS certificates are not "
                "checked, anyone on the way can read the credentials; prefer ca_bundle"
            )
    return warnings


def _ca_bundle(source: str, where: str, value: str) -> None:
    try:
        exists = Path(value).exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise ConfigError(f"{source}: {where}: the CA bundle {value} does not exist")


# -- tables ---------------------------------------------------------------------------------


def _toml_types(hint: Any) -> tuple[type, ...]:
    """The TOML value types a store parameter's annotation accepts."""
    out: list[type] = []
    for arg in typing.get_args(hint) or (hint,):
        if arg is bool:
            out.append(bool)
        elif arg is float:
            out += [int, float]
        elif arg is int:
            out.append(int)
        elif arg is str or typing.get_origin(arg) is os.PathLike or arg is os.PathLike:
            out.append(str)
    return tuple(dict.fromkeys(out)) or (str,)


def _store(
    source: str, data: Any, base_dir: Path | None, warnings: list[str]
) -> tuple[str, dict[str, Any]]:
    table = _Table(source, "store", data)
    kind = table.get("kind", str, "file")
    try:
        cls = store_class(kind)
    except ConfigError as exc:
        raise ConfigError(f"{source}: store.kind: {exc}") from None
    params = inspect.signature(cls).parameters
    hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    types = {
        n: _toml_types(hints.get(n, str))
        for n, p in params.items()
        if p.kind is not p.VAR_KEYWORD and n not in _COMMAND_OPTIONS
    }
    if kind == "vault":
        from backends.vault_auth import VaultAuth

        auth_hints = typing.get_type_hints(VaultAuth)
        types |= {n: _toml_types(h) for n, h in auth_hints.items() if n != "method"}
    unknown = sorted(set(table.data) - set(types) - {"kind"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in [store] for kind {kind!r}: "
            f"{_unknown(unknown, [*types, 'kind'])} (allowed: {', '.join(sorted(types))})"
        )
    options: dict[str, Any] = {}
    for key in table.data:
        if key != "kind":
            options[key] = table.get(key, types[key])
    for key, value in options.items():
        where = table.key(key)
        if isinstance(value, str) and (key.endswith("_file") or key in _FILE_KEYS):
            options[key] = _local_path(source, where, value, base_dir)
        elif key in ("timeout", "busy_timeout"):
            table.number(key, 10.0)
        elif key in PREFIX_KEYS or key in ("mount", "auth_mount"):
            _store_path(source, where, value)
    if kind == "file" and "path" not in options and base_dir is not None:
        options["path"] = _local_path(source, "store.path", DEFAULT_STORE["path"], base_dir)
    if "ca_bundle" in options:
        _ca_bundle(source, table.key("ca_bundle"), options["ca_bundle"])
    if kind == "vault":
        from backends.vault_auth import AUTH_TYPES

        if options.get("auth", "token") not in AUTH_TYPES:
            raise table.err("auth", "one of " + ", ".join(AUTH_TYPES))
        if "url" in options:
            verify = options.get("verify", True) or "ca_bundle" in options
            warnings += _url(source, table.key("url"), options["url"], verify, "verify")
    if "endpoint_url" in options:
        warnings += _url(source, table.key("endpoint_url"), options["endpoint_url"], True, "")
    state_prefix = options.get("state_prefix", "rotator")
    for key in PREFIX_KEYS[:3]:
        prefix = options.get(key)
        if prefix is not None and (_inside(prefix, state_prefix) or _inside(state_prefix, prefix)):
            raise ConfigError(
                f"{source}: store.{key}: overlaps store.state_prefix ({state_prefix!r}), where "
                "Rotator keeps its locks and journal; give them separate prefixes"
            )
    return kind, options


def _settings(
    source: str, name: str, data: Any, cls: type, base_dir: Path | None, warnings: list[str]
) -> Any:
    table = _Table(source, name, data)
    values: dict[str, Any] = {}
    for field_name, f in cls.__dataclass_fields__.items():
        if field_name == "timeout":
            values[field_name] = table.number(field_name, f.default)
            continue
        if field_name.endswith("_file") or field_name == "ca_bundle":
            value = table.file(field_name, base_dir)
        else:
            expected = {"retries": int, "verify_tls": bool}.get(field_name, str)
            value = table.get(field_name, expected, f.default, required=field_name == "url")
        if value is not None:
            values[field_name] = value
    table.done()
    if not 0 <= values.get("retries", 0) <= MAX_RETRIES:
        raise table.err("retries", f"an integer from 0 to {MAX_RETRIES}", show_type=False)
    if values.get("ca_bundle"):
        _ca_bundle(source, table.key("ca_bundle"), values["ca_bundle"])
    verify = values.get("verify_tls", True) or bool(values.get("ca_bundle"))
    warnings += _url(source, table.key("url"), values["url"], verify, "verify_tls")
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
        # Still never the value itself; a near miss names the type it is near.
        close = difflib.get_close_matches(kind, ISSUER_TYPES, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise table.err(
            "type", "one of " + ", ".join(ISSUER_TYPES) + f" (no issuer for that type{hint})"
        )
    conn_id = table.get("conn_id", str)
    if conn_id is not None:
        _store_path(source, table.key("conn_id"), conn_id)
    path = table.get("path", str)
    if path is not None:
        _store_path(source, table.key("path"), path)
        if _inside(path, state_prefix):
            raise ConfigError(
                f"{source}: {table.key('path')}: inside store.state_prefix ({state_prefix!r}), "
                "where Rotator keeps its own state; choose a path outside it"
            )
    every = table.duration("every", timedelta(days=7))
    lifetime = table.duration("lifetime")
    grace = table.duration("grace", timedelta(days=1), allow_zero=True)
    settle = table.duration("settle", allow_zero=True)
    verify_every = table.duration("verify_every", timedelta(hours=1))
    max_alive = table.get("max_alive", int, 4)
    if max_alive < 2:
        raise table.err(
            "max_alive",
            "an integer of at least 2 (the current credential and the one replacing it)",
            show_type=False,
        )
    lead = table.duration("lead")
    where = f"{source}: credentials[{index}] ({name})"
    if settle is None:
        settle = min(DEFAULT_SETTLE, grace)  # type: ignore[type-var]
    elif settle > grace:  # type: ignore[operator]
        raise ConfigError(
            f"{source}: {table.key('settle')}: must be at most grace (a value still settling "
            "is not revoked, so grace would end before it may be)"
        )
    spec = CredentialSpec(
        name=name,
        type=kind,
        conn_id=conn_id,
        user=table.get("user", str),
        every=every,  # type: ignore[arg-type]
        lifetime=lifetime,
        grace=grace,  # type: ignore[arg-type]
        settle=settle,  # type: ignore[arg-type]
        max_alive=max_alive,
        verify_every=verify_every,  # type: ignore[arg-type]
        lead=lead,
        permissions=_permissions(table),
        login_from=table.get("login_from", str),
        push=_push(table),
        announce=table.get("announce", bool, False),
        # Without a conn_id the value is not an Airflow connection: it is kept beside Rotator's
        # state, where Airflow's read-only policy cannot reach it (e.g. a JWT only TeamCity uses).
        path=path
        or (f"{connections_prefix}/{conn_id}" if conn_id else f"{state_prefix}/values/{name}"),
    )
    table.done()
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
    if spec.announce and not spec.conn_id:
        raise ConfigError(
            f"{where}: announce needs a conn_id (the asset announced is rotator://<conn_id>)"
        )
    return spec


def _notify(source: str, index: int, data: Any, base_dir: Path | None) -> NotifySpec:
    """One ``[[notify]]`` table. Its URL is a secret (apprise URLs carry the service's token),
    so only ``url_env``/``url_file`` name it; an inline one is refused without echoing it."""
    where = f"notify[{index}]"
    if isinstance(data, dict):
        for key in ("url", "urls"):
            if key in data:
                raise ConfigError(
                    f"{source}: {where}.{key}: a notification URL carries its service's token "
                    "(slack://..., a webhook URL); secrets do not belong in the config file: "
                    "name an environment variable with url_env, or a file with url_file"
                )
    table = _Table(source, where, data)
    url_env = table.get("url_env", str)
    raw_file = table.get("url_file", str)
    if raw_file is not None and "://" in raw_file:
        raise ConfigError(
            f"{source}: {where}.url_file: expected the path of a file holding the URL; the URL "
            "itself must not be written in the config file"
        )
    url_file = table.file("url_file", base_dir)
    if (url_env is None) == (url_file is None):
        raise ConfigError(f"{source}: {where}: set exactly one of url_env or url_file")
    on = table.get("on", list, required=True)
    if not on or not all(isinstance(e, str) for e in on):
        raise table.err("on", "a non-empty list of events: " + ", ".join(NOTIFY_EVENTS))
    unknown = [e for e in on if e not in NOTIFY_EVENTS]
    if unknown:
        raise ConfigError(
            f"{source}: {where}.on: unknown event(s) {_unknown(unknown, NOTIFY_EVENTS)} "
            f"(known: {', '.join(NOTIFY_EVENTS)})"
        )
    names = table.get("credentials", list, [])
    if not all(isinstance(n, str) for n in names):
        raise table.err("credentials", "a list of credential names")
    table.done()
    return NotifySpec(where, tuple(dict.fromkeys(on)), url_env, url_file, tuple(names))


def _standing(source: str, data: Any) -> StandingAudit:
    """``[audit.teamcity]``: the daemon's schedule for ``rotator audit teamcity``."""
    top = _Table(source, "audit", data)
    table = _Table(source, "audit.teamcity", top.get("teamcity", dict, {}))
    top.done()
    users = table.get("users", list, [])
    if not all(isinstance(u, str) and u.strip() for u in users):
        raise table.err("users", "a list of TeamCity user names")
    audit = StandingAudit(
        every=table.duration("every"),
        users=tuple(users),
        within=table.duration("within", timedelta(days=14)),  # type: ignore[arg-type]
    )
    table.done()
    return audit


def parse(data: dict[str, Any], source: str, base_dir: Path | None = None) -> Config:
    """Validate a decoded rotator.toml. ``base_dir``: the config file's directory, against
    which relative paths resolve (None: leave them relative to the working directory)."""
    warnings: list[str] = []
    top = _Table(source, "", data)
    kind, store_options = _store(
        source, top.get("store", dict, dict(DEFAULT_STORE)), base_dir, warnings
    )
    connections_prefix = store_options.get("connections_prefix", "airflow/connections")
    state_prefix = store_options.get("state_prefix", "rotator")
    teamcity = airflow = None
    if "teamcity" in data:
        teamcity = _settings(
            source, "teamcity", top.get("teamcity", dict), TeamCitySettings, base_dir, warnings
        )
    if "airflow" in data:
        airflow = _settings(
            source, "airflow", top.get("airflow", dict), AirflowSettings, base_dir, warnings
        )
    engine = EngineSettings()
    if "rotator" in data:
        table = _Table(source, "rotator", top.get("rotator", dict))
        parallel = table.get("parallel", int, 8)
        if not 1 <= parallel <= 64:
            raise table.err("parallel", "an integer from 1 to 64", show_type=False)
        lock_ttl = table.duration("lock_ttl", timedelta(seconds=30))
        if lock_ttl > MAX_LOCK_TTL:  # type: ignore[operator]
            raise table.err("lock_ttl", "at most 30s (the lease is renewed while work goes on)")
        engine = EngineSettings(parallel, lock_ttl, table.file("audit_file", base_dir))  # type: ignore[arg-type]
        table.done()
    raw_credentials = top.get("credentials", list, [])
    raw_notify = top.get("notify", list, [])
    standing = _standing(source, top.get("audit", dict)) if "audit" in data else StandingAudit()
    identity = None
    if "identity" in data:
        from rotator.identity.settings import parse_identity

        identity = parse_identity(source, top.get("identity", dict), _Table, _url)
    top.done(TOP_LEVEL_KEYS)
    credentials = tuple(
        _credential(source, i, item, connections_prefix, state_prefix)
        for i, item in enumerate(raw_credentials)
    )
    notify = tuple(_notify(source, i, item, base_dir) for i, item in enumerate(raw_notify))
    _cross_check(source, credentials, teamcity, airflow)
    _check_notify(source, notify, credentials, teamcity, standing)
    return Config(
        source,
        kind,
        store_options,
        teamcity,
        airflow,
        credentials,
        engine,
        warnings=tuple(warnings),
        notify=notify,
        standing=standing,
        identity=identity,
    )


def _check_notify(
    source: str,
    notify: tuple[NotifySpec, ...],
    credentials: tuple[CredentialSpec, ...],
    teamcity: TeamCitySettings | None,
    standing: StandingAudit,
) -> None:
    names = [s.name for s in credentials]
    for target in notify:
        unknown = [n for n in target.credentials if n not in names]
        if unknown:
            raise ConfigError(
                f"{source}: {target.where}.credentials: no credential named "
                f"{_unknown(unknown, names)} in this file"
            )
    if standing.every is not None and teamcity is None:
        raise ConfigError(f"{source}: audit.teamcity: the standing-token audit needs [teamcity]")


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
        if spec.announce and airflow is None:
            raise ConfigError(
                f"{source}: credential {spec.name!r}: announce = true needs an [airflow] table "
                "(the asset event goes through Airflow's API)"
            )
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
