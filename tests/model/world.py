"""The world the model drives: the TeamCity simulator, real stores, one or two Rotator
*installs* (each its own store and config), and what the model knows that the engine does
not tell it: who minted each token, what was ever ``current`` and until when, which tokens are
foreign. ``check()`` proves the invariants of DESIGN.md against the simulator's real state and
the real stores after every rule.

A *process* (``World.run``) is one rotator run: a fresh ``Engine`` over its own
``FaultyStore``. A crash (``InjectedFault`` at a fault point) kills the process's store proxy at
that moment, so nothing it does afterwards (``finally`` blocks, its lease keeper thread)
reaches the store, as after SIGKILL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from backends.errors import NotFound, RotatorError
from backends.store import open_store
from rotator import faults
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from rotator.faults import InjectedFault
from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator
from rotator.spec import CredentialSpec
from tests.fixtures.leaks import register_secret
from tests.fixtures.stores import store_options
from tests.model.faulty_store import FaultyStore, StoreFault

USER = "airflow-bot"
POOL = ("ci", "ci-prod", "ci-prod-eu")
"""Credential names that prefix one another, all on one TeamCity user."""
SECOND = "B"
"""The second install: its own store, a credential named ``ci`` on the same user."""
FOREIGN = ("personal-laptop", "rotator-ci-manual", "rotator-ci")
"""Tokens on the managed user that no Rotator minted (the last two look like ours)."""
DEFAULT_SETTLE = timedelta(minutes=15)
CLIENT_TIMEOUT = 0.5
"""Seconds: TeamCity read timeout of the engine under test (a ``timeout`` fault answers later)."""
RID = r"\d{8}T\d{6}-[0-9a-f]{6}"


def pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"rotator-{re.escape(name)}-{RID}")


# -- violations: one class (and one raise site) per invariant, so that hypothesis reports each
#    distinct defect on its own (``report_multiple_bugs``) -------------------------------------
class Violation(AssertionError):
    invariant = "?"


class I1CurrentBroken(Violation):
    invariant = "I1"


class I1RefusedUnnoticed(Violation):
    """DESIGN.md: a current revoked outside Rotator is noticed by the daemon and replaced."""

    invariant = "I1"


class I1PasswordNotCurrent(Violation):
    invariant = "I1"


class I2SettlingRefused(Violation):
    invariant = "I2"


class I3SiblingRevoked(Violation):
    invariant = "I3"


class I3OtherInstallRevoked(Violation):
    invariant = "I3"


class I3ForeignRevoked(Violation):
    invariant = "I3"


class I4TooManyAlive(Violation):
    invariant = "I4"


class I4Orphan(Violation):
    invariant = "I4"


class I5PasswordLost(Violation):
    invariant = "I5"


class I5PasswordLostByRollback(I5PasswordLost):
    """The loss appeared right after a ``rollback`` (the store moved, Airflow did not)."""


class I6Leak(Violation):
    invariant = "I6"


class EngineEscape(Violation):
    """A run raised something that is not Rotator's error tree (a malformed answer must fail
    that credential with a clear error; the rest of the pass goes on)."""

    invariant = "malformed"


class RefusalChangedSomething(Violation):
    """``rotate --force`` refused by ``max_alive`` must change nothing (DESIGN.md)."""

    invariant = "I4"


class TwoHolders(Violation):
    """Two processes believed they held the same lease at once."""

    invariant = "lock"


PRIORITY = (
    EngineEscape,
    I3SiblingRevoked,
    I3OtherInstallRevoked,
    I3ForeignRevoked,
    TwoHolders,
    I6Leak,
)


# -- feature detection: rules that need the hardened engine sit out on the old commit ------
def _params(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


@dataclass(frozen=True)
class Features:
    revoke_previous: bool
    rollback_to: bool
    run_pass: bool
    settle: bool
    max_alive: bool

    @classmethod
    def detect(cls) -> Features:
        spec_fields = {f.name for f in dataclasses.fields(CredentialSpec)}
        return cls(
            revoke_previous="revoke_previous" in _params(Engine.rotate_one),
            rollback_to="to" in _params(Engine.rollback),
            run_pass=callable(getattr(Engine, "run_pass", None)),
            settle="settle" in spec_fields,
            max_alive="max_alive" in spec_fields,
        )


FEATURES = Features.detect()


# -- the clock -----------------------------------------------------------------------------
class Clock:
    """The engine's clock and the simulator's, moved together."""

    def __init__(self, sim: TeamCitySimulator) -> None:
        self.offset = timedelta()
        self.sim = sim

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
        self.sim.advance_clock(delta.total_seconds())


# -- bookkeeping ---------------------------------------------------------------------------
@dataclass
class Held:
    """One value that was ``current`` for a while (``until`` None: still is)."""

    secret: str = field(repr=False)
    name: str | None
    since: datetime
    until: datetime | None = None
    released: bool = False
    """Revoked on purpose (``--revoke-previous``): no consumer may rely on it any more."""


@dataclass
class Install:
    name: str
    store: Any
    ns: str
    active: list[str]
    audit_path: Path
    specs: dict[str, CredentialSpec] = field(default_factory=dict)
    config: Any = None


@dataclass
class RunResult:
    outcome: Any
    crashed: bool = False
    error: BaseException | None = None
    struck: StoreFault | None = None
    ended: datetime | None = None
    """The model clock when the run returned."""
    call: str = ""
    seq: int = 0
    """The world's run counter when this run started."""

    def _outcomes(self) -> list[Any]:
        return self.outcome if isinstance(self.outcome, list) else [self.outcome]

    @property
    def ok(self) -> bool:
        return (
            not self.crashed
            and self.error is None
            and all(
                o is not None
                and o.result in ("rotated", "not-due", "rolled-back", "verified")
                and not o.error
                for o in self._outcomes()
            )
        )

    @property
    def clean(self) -> bool:
        return self.ok and not any(o.warnings for o in self._outcomes())


@dataclass
class Stats:
    rules: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)


STATS = Stats()
"""Module-wide: the long run (``bench/model_run.py``) prints them."""


class World:
    """Everything one example touches; built fresh per example, torn down after it."""

    def __init__(
        self,
        sim: TeamCitySimulator,
        admin_token: str,
        store_kind: str,
        servers: dict[str, Any],
        tmp: Path,
        *,
        grace: str = "1d",
        settle: str | None = None,
        max_alive: int | None = None,
        initial: tuple[str, ...] | None = ("ci", "ci-prod"),
        second_install: bool = True,
        decoys: bool = True,
        push: bool = False,
        features: Features = FEATURES,
    ) -> None:
        """``initial``: install A's credentials (None: no install yet, a subclass adds its
        own); ``second_install``: install B managing ``ci``; ``decoys``: foreign tokens that
        look like Rotator's on the managed user (one plain foreign token is always there)."""
        self.sim = sim
        self.admin_token = admin_token
        self.store_kind = store_kind
        self.servers = servers
        self.tmp = tmp
        self.features = features
        self.grace, self.settle_text, self.max_alive_cfg = grace, settle, max_alive
        self.push = push
        self.violations: list[Violation] = []
        self._lock = threading.Lock()
        self._reset_sim()
        self.clock = Clock(sim)
        self.installs: dict[str, Install] = {}
        self.owner: dict[str, tuple[str, str]] = {}
        """Token name -> (install, credential) that minted it; ("foreign", kind) otherwise."""
        self.held: dict[tuple[str, str], list[Held]] = {}
        self.key_of_path: dict[tuple[str, str], tuple[str, str]] = {}
        self.secrets: set[str] = {admin_token}
        self.leases: dict[str, list[Any]] = {}
        self.dead_leases: list[tuple[Any, Any]] = []
        self.last_runs: dict[tuple[str, str], RunResult] = {}
        self.point_hooks: dict[str, Callable[[], None]] = {}
        self.current_proc: FaultyStore | None = None
        self.runs = 0
        self.last_call = ""
        self.staged: set[str] = set()
        self.broken: dict[tuple[str, str], tuple[str, int]] = {}
        """Currents revoked by hand (value, run counter then), until Rotator replaces them."""
        self.owner["bootstrap-admin"] = ("foreign", "bootstrap")
        if initial is None:
            return
        for token_name in FOREIGN if decoys else FOREIGN[:1]:
            value = f"fgn-{secrets.token_urlsafe(18)}"
            sim.add_token(USER, token_name, value)
            self.owner[token_name] = ("foreign", "foreign")
            self.secrets.add(value)
        self.add_install("A", list(initial))
        if second_install:
            self.add_install(SECOND, ["ci"])

    # -- setup -----------------------------------------------------------------------------
    def _reset_sim(self) -> None:
        sim = self.sim
        fresh = TeamCitySimulator(admin_token=self.admin_token, seed=DEMO_SEED)
        with sim.state.lock:
            fresh.state.base_url = sim.url  # type: ignore[attr-defined]
            fresh.state.started = sim.state.started  # type: ignore[attr-defined]
            sim.state.__dict__.update(
                {k: v for k, v in fresh.state.__dict__.items() if k != "lock"}
            )
        sim.faults.clear()
        sim.clear_requests()

    def add_install(self, name: str, active: list[str]) -> Install:
        ns = f"m{uuid.uuid4().hex[:10]}"
        (self.tmp / ns).mkdir(parents=True, exist_ok=True)
        options = store_options(self.store_kind, tmp_path=self.tmp / ns, ns=ns, **self.servers)
        store = open_store(self.store_kind, **options)
        install = Install(name, store, ns, active, self.tmp / f"audit-{name}-{ns}.jsonl")
        install.options = options  # type: ignore[attr-defined]
        self.installs[name] = install
        self.configure(install)
        return install

    def credential_table(self, name: str) -> dict[str, Any]:
        table: dict[str, Any] = {
            "name": name,
            "type": "teamcity-token",
            "user": USER,
            "conn_id": f"tc_{name.replace('-', '_')}",
            "every": "7d",
            "lifetime": "60d",
            "grace": self.grace,
            "permissions": [{"project": "DataPipelines", "permission": "view_project"}],
        }
        if self.push and name == "ci-prod":
            table["push"] = [{"teamcity_project": "DataPipelines", "parameter": "env.CI_PROD"}]
        return table

    def raw_config(self, install: Install) -> dict[str, Any]:
        return {
            "store": {"kind": self.store_kind, **install.options},  # type: ignore[attr-defined]
            "teamcity": {
                "url": self.sim.url,
                "token_env": "TEAMCITY_TOKEN",
                "timeout": CLIENT_TIMEOUT,
                "retries": 1,
            },
            "rotator": {"lock_ttl": "3s"},
            "credentials": [self.credential_table(n) for n in install.active],
        }

    def configure(self, install: Install) -> None:
        """(Re)build the install's config from its active credential names."""
        config = parse(self.raw_config(install), f"model-{install.name}.toml")
        specs = {}
        for spec in config.credentials:
            changes: dict[str, Any] = {}
            if self.features.settle and self.settle_text is not None:
                from rotator.durations import parse_duration

                changes["settle"] = parse_duration(self.settle_text, where="model")
            if self.features.max_alive and self.max_alive_cfg is not None:
                changes["max_alive"] = self.max_alive_cfg
            specs[spec.name] = dataclasses.replace(spec, **changes) if changes else spec
        install.config = dataclasses.replace(
            config, credentials=tuple(specs[n] for n in install.active)
        )
        install.specs = specs
        for name, spec in specs.items():
            key = (install.name, name)
            self.key_of_path[(install.name, spec.path)] = key
            self.held.setdefault(key, [])

    def settle(self, spec: CredentialSpec) -> timedelta:
        value = getattr(spec, "settle", None)
        if value is not None:
            return value
        return min(DEFAULT_SETTLE, spec.grace)

    def max_alive(self, spec: CredentialSpec) -> int:
        return int(getattr(spec, "max_alive", 4) or 4)

    def managed(self) -> Iterator[tuple[Install, CredentialSpec]]:
        for install in self.installs.values():
            for name in install.active:
                yield install, install.specs[name]

    def close(self) -> None:
        for install in self.installs.values():
            with contextlib.suppress(Exception):
                install.store.close()
        for user in self.sim.state.users.values():
            for token in user.tokens.values():
                register_secret(token.value)
        for value in self.secrets:
            register_secret(value)

    # -- a process -------------------------------------------------------------------------
    def process(
        self, install: Install, fault: StoreFault | None = None
    ) -> tuple[Engine, FaultyStore]:
        proxy = FaultyStore(
            install.store,
            fault,
            on_current=lambda path, version: self._on_current(install.name, path, version),
            on_lease=lambda what, key, lease: self._on_lease(
                proxy, what, f"{install.name}:{key}", lease
            ),
            on_pending=self._on_pending,
        )
        audit = Audit(install.audit_path)
        config = install.config
        engine = Engine.from_config(config, proxy, audit, clock=self.clock)
        return engine, proxy

    def _on_pending(self, value: dict[str, Any]) -> None:
        """A value staged in the store (a password may reach the target next)."""
        secret = value.get("password")
        if isinstance(secret, str) and secret:
            with self._lock:
                self.secrets.add(secret)
                self.staged.add(secret)

    def _on_current(self, install: str, path: str, version: Any) -> None:
        key = self.key_of_path.get((install, path))
        if key is None or version is None:
            return
        self._note_current(key, version)

    def _note_current(self, key: tuple[str, str], version: Any) -> None:
        value = version.value if hasattr(version, "value") else None
        secret = str((value or {}).get("password") or "")
        if not secret:
            return
        with self._lock:
            self.secrets.add(secret)
            held = self.held.setdefault(key, [])
            if held and held[-1].secret == secret and held[-1].until is None:
                return
            now = self.clock()
            for h in held:
                if h.until is None:
                    h.until = now
            held.append(Held(secret, version.meta.get("target_name"), now))

    def _on_lease(self, proxy: FaultyStore, what: str, key: str, lease: Any) -> None:
        with self._lock:
            holders = self.leases.setdefault(key, [])
            if what == "acquire_lease":
                real_now = datetime.now(UTC)
                holders[:] = [
                    (p, le)
                    for p, le in holders
                    if getattr(le, "expires", None) is None or le.expires > real_now
                ]
                others = [p for p, _ in holders if p is not proxy]
                if others:
                    self.violations.append(
                        TwoHolders(f"two processes hold the lease {key!r} at once")
                    )
                holders.append((proxy, lease))
            else:
                self.leases[key] = [(p, le) for p, le in holders if p is not proxy]

    def point(self, name: str) -> None:
        """Installed as ``rotator.faults.point`` for the whole test: a crash kills the process's
        store proxy at the crash point; an outage hook starts at its step."""
        hook = self.point_hooks.get(name)
        if hook is not None:
            hook()
        try:
            _ORIGINAL_POINT(name)
        except InjectedFault:
            proc = self.current_proc
            if proc is not None:
                proc.kill()
            raise

    def tokens(self) -> dict[str, Any]:
        user = self.sim.state.find_user(USER)
        with self.sim.state.lock:
            return dict(user.tokens)

    def run(
        self,
        install: Install,
        credential: str,
        call: str = "rotate_one",
        *,
        crash_at: str | None = None,
        fault: StoreFault | None = None,
        solo: bool = True,
        **kwargs: Any,
    ) -> RunResult:
        """One process runs ``Engine.<call>`` for ``credential`` ("" = all of the install's)
        with ``kwargs``; ``solo`` False when another process runs at the same time."""
        self.runs += 1
        self.last_call = call
        spec: Any = install.specs[credential] if credential else list(install.config.credentials)
        engine, proxy = self.process(install, fault)
        before = self.tokens()
        current_before = (
            self.read(install, spec.path) if solo and credential and kwargs.get("force") else None
        )
        self.current_proc = proxy
        result = RunResult(None)
        if crash_at:
            os.environ["ROTATOR_FAULT"] = f"{crash_at}:raise"
        try:
            result.outcome = getattr(engine, call)(spec, **kwargs)
        except InjectedFault:
            result.crashed = True
            proxy.kill()
        except RotatorError as exc:  # e.g. the store down before the lock
            result.error = exc
        except Exception as exc:
            result.error = exc
            self.violations.append(
                EngineEscape(
                    f"{install.name}/{credential} {call}{kwargs}: {type(exc).__name__} escaped "
                    f"the engine: {str(exc)[:200]}"
                )
            )
        finally:
            os.environ.pop("ROTATOR_FAULT", None)
            self.current_proc = None
        result.struck = proxy.struck
        result.call = call
        result.seq = self.runs
        self._bury(proxy)  # a lease the run left behind (it crashed, or lost an answer)
        result.ended = self.clock()
        self.sim.faults.wait_idle()
        self._attribute(install.name, credential, before, self.tokens())
        self._leaks(engine, result)
        if credential:
            self.last_runs[(install.name, credential)] = result
            self._refusal_changed_nothing(install, credential, current_before, before, result)
        elif isinstance(result.outcome, list):
            for spec_i, outcome_i in zip(spec, result.outcome, strict=False):
                self.last_runs[(install.name, spec_i.name)] = RunResult(
                    outcome_i,
                    result.crashed,
                    result.error,
                    result.struck,
                    result.ended,
                    call,
                    result.seq,
                )
        outcomes = result.outcome if isinstance(result.outcome, list) else [result.outcome]
        for o in outcomes:
            STATS.outcomes[
                o.result if o is not None else ("crash" if result.crashed else "error")
            ] += 1
        return result

    def _refusal_changed_nothing(
        self,
        install: Install,
        credential: str,
        current_before: Any,
        tokens_before: dict[str, Any],
        result: RunResult,
    ) -> None:
        o = result.outcome
        if current_before is None or o is None or isinstance(o, list) or o.result != "failed":
            return
        if "max_alive" not in f"{o.error} {o.reason}":
            return
        after = self.read(install, install.specs[credential].path)
        minted = [
            n
            for n in self.tokens().keys() - tokens_before.keys()
            if self.owner.get(n) == (install.name, credential)
        ]
        if after is None or after.id != current_before.id or minted:
            self.violations.append(
                RefusalChangedSomething(
                    f"{install.name}/{credential}: a forced rotation refused by max_alive "
                    f"changed current or minted {sorted(minted)}"
                )
            )

    def race(self, install: Install, credential: str, **kwargs: Any) -> list[RunResult]:
        """Two processes of one install rotate the same credential at the same moment."""
        barrier = threading.Barrier(2)
        results: list[RunResult] = []

        def one() -> None:
            barrier.wait(timeout=10)
            results.append(self.run(install, credential, solo=False, **kwargs))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return results

    def revoke_by_hand(self, install: Install, credential: str) -> bool:
        """An administrator deletes the current token in TeamCity's UI (outside Rotator).
        Consumers are refused until Rotator notices: the daemon's proof, or a rotation."""
        spec = install.specs[credential]
        current = self.read(install, spec.path)
        if current is None or not current.meta.get("target_name"):
            return False
        name = current.meta["target_name"]
        user = self.sim.state.find_user(USER)
        with self.sim.state.lock:
            if user.tokens.pop(name, None) is None:
                return False
        secret = str(current.value.get("password"))
        with self._lock:
            self.broken[(install.name, credential)] = (secret, self.runs)
            for held in self.held.get((install.name, credential), []):
                if held.secret == secret:
                    held.released = True  # refused because of the administrator, not of us
        return True

    def release_older(self, install: str, credential: str) -> None:
        """After ``--revoke-previous``: every value before the new current was revoked on
        purpose; no consumer may count on it."""
        with self._lock:
            held = self.held.get((install, credential), [])
            for h in held[:-1]:
                h.released = True

    def _bury(self, proxy: FaultyStore) -> None:
        """The dead process's lease stays held until it lapses (``lease_lapses``)."""
        with self._lock:
            for key, holders in self.leases.items():
                for p, lease in holders:
                    if p is proxy:
                        self.dead_leases.append((key, lease))
                self.leases[key] = [(p, le) for p, le in holders if p is not proxy]

    def lapse_dead_leases(self) -> None:
        """Time passes for the lease: a dead holder's lease lapses (released here at once
        rather than waited for, which changes nothing for the protocol)."""
        with self._lock:
            dead, self.dead_leases = self.dead_leases, []
        for key, lease in dead:
            install = self.installs.get(key.split(":", 1)[0])
            if install is not None:
                with contextlib.suppress(Exception):
                    install.store.release_lease(lease)

    def _attribute(
        self, install: str, credential: str, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        """Who minted each new token, and whether each token gone was the run's to revoke.
        ``credential`` "" is a pass over all of the install's credentials."""
        names = [credential] if credential else list(self.installs[install].active)
        for name in sorted(after.keys() - before.keys()):
            self.secrets.add(after[name].value)
            owner = next((n for n in names if pattern(n).fullmatch(name)), None)
            if owner is not None:
                self.owner[name] = (install, owner)
            else:
                self.owner.setdefault(name, (install, credential or "?"))
        for name in sorted(before.keys() - after.keys()):
            owner = self.owner.get(name)
            if owner is not None and owner[0] == install and owner[1] in names:
                continue
            who = f"{install}/{credential}"
            if owner is None:
                continue  # minted and revoked within the same earlier run
            if owner[0] == "foreign":
                self.violations.append(
                    I3ForeignRevoked(f"{who} revoked {name!r}, a {owner[1]} token it never minted")
                )
            elif owner[0] != install:
                self.violations.append(
                    I3OtherInstallRevoked(
                        f"{who} revoked {name!r}, minted by install {owner[0]} for {owner[1]!r} "
                        "(a second store's live token)"
                    )
                )
            else:
                self.violations.append(
                    I3SiblingRevoked(
                        f"{who} revoked {name!r}, a token of its sibling credential {owner[1]!r}"
                    )
                )

    def _leaks(self, engine: Engine, result: RunResult) -> None:
        texts = [json.dumps(engine.audit.events, default=str)]
        outcomes = result.outcome if isinstance(result.outcome, list) else [result.outcome]
        for outcome in filter(None, outcomes):
            texts.append(json.dumps(outcome.as_dict(), default=str))
            texts.append(repr(outcome))
        if result.error is not None:
            texts.append(f"{type(result.error).__name__}: {result.error}")
        blob = "\n".join(texts)
        for value in self.all_secrets():
            if value and len(value) >= 8 and value in blob:
                self.violations.append(
                    I6Leak(
                        f"a secret (sha256:{_fp(value)}) appears in the audit or outcome of a run"
                    )
                )
                return

    def all_secrets(self) -> set[str]:
        values = set(self.secrets)
        with self.sim.state.lock:
            for user in self.sim.state.users.values():
                values |= {t.value for t in user.tokens.values()}
        return values

    # -- the invariants --------------------------------------------------------------------
    def works(self, secret: str) -> bool:
        response = requests.get(
            f"{self.sim.url}/app/rest/server",
            headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"},
            timeout=5,
        )
        return response.status_code == 200

    def alive_values(self) -> dict[str, Any]:
        now = self.sim.state.now()
        return {t.value: t for t in self.tokens().values() if t.expires is None or t.expires > now}

    def read(self, install: Install, path: str, stage: str = "current") -> Any:
        try:
            return install.store.read(path, stage)
        except NotFound:
            return None

    def check(self) -> None:
        """I1-I6 (and the lock and malformed-answer rules) against the real state."""
        self.raise_recorded()
        alive = self.alive_values()
        alive_names = {t.name for t in alive.values()}
        now = self.clock()
        for install, spec in self.managed():
            key = (install.name, spec.name)
            current = self.read(install, spec.path)
            if current is not None:
                self._note_current(key, current)
                secret = str(current.value.get("password") or "")
                broken = self.broken.get(key)
                if broken is not None and broken[0] == secret:
                    last = self.last_runs.get(key)
                    if (
                        last is not None
                        and last.seq > broken[1]
                        and last.call == "run_pass"
                        and last.ok
                    ):
                        raise I1RefusedUnnoticed(
                            f"{install.name}/{spec.name}: a daemon pass left a current that "
                            "TeamCity refuses (revoked by hand) in place"
                        )
                    secret = ""  # refused until Rotator notices; not Rotator's doing
                else:
                    self.broken.pop(key, None)
                if secret and (secret not in alive or not self.works(secret)):
                    raise I1CurrentBroken(
                        f"{install.name}/{spec.name}: the store's current "
                        f"({current.meta.get('target_name')}) does not work at TeamCity"
                    )
            settle = self.settle(spec)
            for held in self.held.get(key, []):
                if held.until is None or held.released or now - held.until >= settle:
                    continue
                if held.secret not in alive:
                    raise I2SettlingRefused(
                        f"{install.name}/{spec.name}: {held.name} stopped being current "
                        f"{(now - held.until).total_seconds():.0f}s ago (settle "
                        f"{settle.total_seconds():.0f}s) and was revoked: a consumer "
                        "holding it is refused"
                    )
            mine = {n for n in alive_names if self.owner.get(n) == key}
            limit = self.max_alive(spec)
            if len(mine) > limit:
                raise I4TooManyAlive(
                    f"{install.name}/{spec.name}: {len(mine)} tokens alive > max_alive {limit}"
                )
            last = self.last_runs.get(key)
            if last is not None and last.ok:
                known = {current.meta.get("target_name")} if current is not None else set()
                orphans = mine - known
                if orphans:  # only then read the rest of what the store recorded
                    orphans -= self.recorded(install, spec)
                if orphans:
                    raise I4Orphan(
                        f"{install.name}/{spec.name}: after a successful run, "
                        f"{sorted(orphans)} alive at TeamCity, unknown to its own store"
                    )
                ended = last.ended or now
                settling = [  # at the end of that run
                    h
                    for h in self.held.get(key, [])
                    if h.until is not None and not h.released and ended - h.until < settle
                ]
                if last.clean and not settling and len(mine - self.scheduled(install, spec)) > 2:
                    raise I4TooManyAlive(
                        f"{install.name}/{spec.name}: {len(mine)} tokens alive once nothing "
                        "is settling (at most 2: current and previous)"
                    )
        for name, owner in self.owner.items():
            if owner[0] == "foreign" and name not in self.tokens() and name != "bootstrap-admin":
                raise I3ForeignRevoked(f"the foreign token {name!r} is gone")
        admin = self.sim.state.find_user("admin")
        if "bootstrap-admin" not in admin.tokens:
            raise I3ForeignRevoked("the bootstrap admin token was revoked")

    def raise_recorded(self) -> None:
        """Violations seen during the rule, the most specific first (deterministic, so that
        hypothesis replays the same failure), the others named in its message."""
        if not self.violations:
            return
        found, self.violations = self.violations, []
        found.sort(key=lambda v: (PRIORITY.index(type(v)) if type(v) in PRIORITY else 99, str(v)))
        first = found[0]
        others = sorted({str(v) for v in found[1:]})
        if others:
            first.args = (f"{first.args[0]} (also: {'; '.join(others)})",)
        raise first

    def scheduled(self, install: Install, spec: CredentialSpec) -> set[str]:
        """The names on the store's retire list whose time has not come: still settling as far
        as I4 goes (e.g. a create whose answer was lost, revoked again once a late create could
        have landed: ``LATE_CREATE`` after, which only a clock that moves ever reaches)."""
        journal = install.store.read_journal(spec.name) or {}
        now = self.clock()
        names = set()
        for entry in journal.get("retire") or []:
            if not isinstance(entry, dict) or not entry.get("target_name"):
                continue
            with contextlib.suppress(TypeError, ValueError):  # unreadable: due, not scheduled
                if datetime.fromisoformat(entry["not_before"]) > now:
                    names.add(str(entry["target_name"]))
        return names

    def recorded(self, install: Install, spec: CredentialSpec) -> set[str]:
        """Every target name the store records for ``spec``: its stages, the retire list, the
        journal's intent."""
        names: set[str] = set()
        for stage in ("current", "previous", "pending"):
            version = self.read(install, spec.path, stage)
            if version is not None and version.meta.get("target_name"):
                names.add(version.meta["target_name"])
        journal = install.store.read_journal(spec.name) or {}
        for entry in journal.get("retire") or []:
            if isinstance(entry, dict) and entry.get("target_name"):
                names.add(entry["target_name"])
        rotation = journal.get("rotation") or {}
        if rotation.get("target_name"):
            names.add(rotation["target_name"])
        return names

    def state_signature(self) -> tuple:
        """A coarse abstract state, to count distinct states visited."""
        alive_names = {t.name for t in self.alive_values().values()}
        sig = []
        for install, spec in self.managed():
            key = (install.name, spec.name)
            mine = sum(1 for n in alive_names if self.owner.get(n) == key)
            journal = install.store.read_journal(spec.name) or {}
            step = (journal.get("rotation") or {}).get("step")
            retire = len(journal.get("retire") or [])
            sig.append((key, mine, step, retire))
        return tuple(sorted(sig))


_ORIGINAL_POINT = faults.point


def _fp(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()[:12]
