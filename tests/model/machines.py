"""The rule-based state machine that drives the real engine against the TeamCity simulator and
a real store (``World``), checking the invariants after every rule.

``token_machine(ctx)`` returns a machine class bound to one store kind and its servers; the
suite (``test_model.py``) and the long run (``bench/model_run.py``) both run it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rotator.faults import POINTS
from tests.model.faulty_store import CAS, MODES, READS, WRITES, StoreFault
from tests.model.world import CLIENT_TIMEOUT, FEATURES, POOL, SECOND, STATS, World

TARGET_FAULTS = ("5xx", "timeout", "drop", "lose", "401", "html", "truncate")
WHERE = {
    "mint": ("/tokens", "POST"),
    "verify": ("/app/rest/server", "GET"),
    "revoke": ("/tokens/", "DELETE"),
    "list": ("/tokens", "GET"),
    "push": ("/parameters", None),
    "any": (None, None),
}
STEPS = {
    "1m": timedelta(minutes=1),
    "10m": timedelta(minutes=10),
    "16m": timedelta(minutes=16),
    "2h": timedelta(hours=2),
    "1d+1m": timedelta(days=1, minutes=1),
    "7d": timedelta(days=7),
}
EARLY_POINTS = tuple(p for p in POINTS if p.split(":")[1] in ("lock", "intent", "mint", "stage"))
LATE_POINTS = tuple(p for p in POINTS if p not in EARLY_POINTS)
FAULT_KINDS = st.sampled_from(TARGET_FAULTS)
FAULT_COUNTS = st.sampled_from([1, 2, 5])
NTH = st.sampled_from([0, 0, 1, 2])
MAX_OFFSET = timedelta(days=40)
"""Tokens live 60d (``lifetime``, from the issuer's wall clock): the model clock stays well
inside it, so no token expires under the model's feet."""


def arm_target_fault(sim: Any, kind: str, where: str, count: int) -> None:
    only, method = WHERE[where]
    f = sim.faults
    if kind == "5xx":
        f.fail_next(count, status=503, only=only, method=method)
    elif kind == "401":
        f.fail_next(count, status=401, only=only, method=method)
    elif kind == "timeout":
        f.slow_next(count, CLIENT_TIMEOUT + 0.3, only=only, method=method)
    elif kind == "drop":
        f.drop_next(count, only=only, method=method)
    elif kind == "lose":
        f.lose_next(count, only=only, method=method)
    elif kind == "html":
        f.html_next(count, only=only, method=method)
    elif kind == "truncate":
        f.truncate_next(count, only=only, method=method)
    else:
        raise ValueError(kind)


def token_machine(ctx: dict[str, Any]) -> type[RuleBasedStateMachine]:
    """A machine class bound to ``ctx``: ``sim``, ``admin_token``, ``store_kind``,
    ``servers``, ``tmp`` (a directory), optional ``features``."""

    class TokenMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world: World | None = None

        # -- setup ---------------------------------------------------------------------
        @initialize(
            grace=st.sampled_from(["1d", "1h"]),
            settle=st.sampled_from([None, "5m"]),
            max_alive=st.sampled_from([None, 3]),
            initial=st.sampled_from([("ci", "ci-prod"), ("ci-prod",), ("ci",)]),
            push=st.booleans(),
            second_install=st.booleans(),
            decoys=st.booleans(),
        )
        def setup(self, grace, settle, max_alive, initial, push, second_install, decoys) -> None:
            self.world = World(
                ctx["sim"],
                ctx["admin_token"],
                ctx["store_kind"],
                ctx["servers"],
                ctx["tmp"],
                grace=grace,
                settle=settle,
                max_alive=max_alive,
                initial=initial,
                push=push,
                second_install=second_install,
                decoys=decoys,
                features=ctx.get("features", FEATURES),
            )
            ctx.setdefault("hooks", {})["world"] = self.world

        def teardown(self) -> None:
            if self.world is not None:
                self.world.sim.faults.clear()
                self.world.close()

        @invariant()
        def invariants(self) -> None:
            if self.world is not None:
                self.world.check()

        # -- helpers -------------------------------------------------------------------
        def pick(self, data: Any, *, second: bool = True) -> tuple[Any, str]:
            w = self.world
            targets = [("A", n) for n in w.installs["A"].active]
            if second and SECOND in w.installs:
                targets += [(SECOND, n) for n in w.installs[SECOND].active]
            install, name = data.draw(st.sampled_from(targets), label="credential")
            return w.installs[install], name

        def count(self, rule: str) -> None:
            STATS.rules[rule] += 1

        # -- rules ---------------------------------------------------------------------
        @rule(data=st.data(), force=st.booleans())
        def rotate(self, data, force) -> None:
            self.count("rotate:force" if force else "rotate:due")
            install, name = self.pick(data)
            self.world.run(install, name, force=force)

        @precondition(lambda self: FEATURES.revoke_previous)
        @rule(data=st.data())
        def rotate_revoke_previous(self, data) -> None:
            self.count("rotate:revoke-previous")
            install, name = self.pick(data)
            result = self.world.run(install, name, force=True, revoke_previous=True)
            if result.outcome is not None and result.outcome.result == "rotated":
                self.world.release_older(install.name, name)

        # Fault rules come in families (one rule each), so that hypothesis, which picks rules
        # about evenly, spends most of its steps on faults rather than on the cheap rules.
        def _crash(self, data, point, force) -> None:
            self.count("crash")
            install, name = self.pick(data)
            if self.world.run(install, name, crash_at=point, force=force).crashed:
                STATS.faults[f"crash {point}"] += 1

        @rule(data=st.data(), point=st.sampled_from(EARLY_POINTS), force=st.booleans())
        def crash_early(self, data, point, force) -> None:
            """A crash from the lock to the staged value (lock, intent, mint, stage)."""
            self._crash(data, point, force)

        @rule(data=st.data(), point=st.sampled_from(LATE_POINTS), force=st.booleans())
        def crash_late(self, data, point, force) -> None:
            """A crash from verify to unlock (apply, verify, promote, push, retire, unlock)."""
            self._crash(data, point, force)

        def _target_fault(self, data, kind, where, count, force) -> None:
            self.count("target-fault")
            install, name = self.pick(data)
            sim = self.world.sim
            arm_target_fault(sim, kind, where, count)
            before = dict(sim.faults.taken)
            try:
                self.world.run(install, name, force=force)
            finally:
                sim.faults.clear()
            for action, n in sim.faults.taken.items():
                if n > before.get(action, 0):
                    STATS.faults[f"target {kind}"] += n - before.get(action, 0)

        @rule(data=st.data(), kind=FAULT_KINDS, count=FAULT_COUNTS, force=st.booleans())
        def target_fault_mint(self, data, kind, count, force) -> None:
            """The token POST fails, is lost after TeamCity created the token, times out..."""
            self._target_fault(data, kind, "mint", count, force)

        @rule(data=st.data(), kind=FAULT_KINDS, count=FAULT_COUNTS, force=st.booleans())
        def target_fault_verify(self, data, kind, count, force) -> None:
            self._target_fault(data, kind, "verify", count, force)

        @rule(data=st.data(), kind=FAULT_KINDS, count=FAULT_COUNTS, force=st.booleans())
        def target_fault_revoke(self, data, kind, count, force) -> None:
            self._target_fault(data, kind, "revoke", count, force)

        @rule(data=st.data(), kind=FAULT_KINDS, count=FAULT_COUNTS, force=st.booleans())
        def target_fault_list(self, data, kind, count, force) -> None:
            self._target_fault(data, kind, "list", count, force)

        @rule(
            data=st.data(),
            kind=FAULT_KINDS,
            where=st.sampled_from(["any", "push"]),
            count=FAULT_COUNTS,
            force=st.booleans(),
        )
        def target_fault_anywhere(self, data, kind, where, count, force) -> None:
            """The next request(s) whatever they are (the bootstrap check, the plan's reads),
            or the parameter push."""
            self._target_fault(data, kind, where, count, force)

        def _store_fault(self, data, methods, nth, force) -> None:
            self.count("store-fault")
            install, name = self.pick(data)
            method = data.draw(st.sampled_from(methods), label="method")
            modes = ["unavailable"]
            if method in CAS:
                modes.append("conflict")
            if method in WRITES:
                modes += ["applied-unavailable"] + (["applied-conflict"] if method in CAS else [])
            mode = data.draw(st.sampled_from(modes), label="mode")
            assert mode in MODES
            result = self.world.run(install, name, fault=StoreFault(method, nth, mode), force=force)
            if result.struck is not None:
                STATS.faults[f"store {mode}"] += 1

        @rule(data=st.data(), nth=NTH, force=st.booleans())
        def store_fault_write(self, data, nth, force) -> None:
            """A store write refused, conflicting, or applied with its answer lost."""
            self._store_fault(data, WRITES, nth, force)

        @rule(data=st.data(), nth=NTH, force=st.booleans())
        def store_fault_read(self, data, nth, force) -> None:
            self._store_fault(data, READS, nth, force)

        @precondition(lambda self: self.world is not None and self.world.clock.offset < MAX_OFFSET)
        @rule(step=st.sampled_from(sorted(STEPS)))
        def advance_clock(self, step) -> None:
            """Time passes: leases a dead process left behind lapse too."""
            self.count("advance-clock")
            self.world.clock.advance(STEPS[step])
            self.world.lapse_dead_leases()

        @rule(data=st.data())
        def rollback(self, data) -> None:
            self.count("rollback")
            install, name = self.pick(data)
            self.world.run(install, name, "rollback")

        @precondition(lambda self: FEATURES.rollback_to)
        @rule(data=st.data(), which=st.integers(min_value=0, max_value=5))
        def rollback_to(self, data, which) -> None:
            """``rollback --to VERSION``: any stored version, revoked ones included (they must
            be refused, nothing changed)."""
            self.count("rollback-to")
            install, name = self.pick(data)
            try:
                versions = install.store.versions(install.specs[name].path)
            except Exception:  # nothing stored yet, or the store is down
                versions = []
            if not versions:
                return
            version = versions[which % len(versions)]
            self.world.run(install, name, "rollback", to=version.id)

        @precondition(lambda self: FEATURES.run_pass)
        @rule(install=st.sampled_from(["A", SECOND]))
        def daemon_pass(self, install) -> None:
            """One pass of ``rotator run``: rotate what is due, prove each current (a fresh
            daemon has proven nothing yet), rotate a refused one at once."""
            self.count("daemon-pass")
            if install not in self.world.installs:
                install = "A"
            self.world.run(self.world.installs[install], "", "run_pass")

        @rule(data=st.data())
        def revoke_current_by_hand(self, data) -> None:
            """An administrator deletes the current token at TeamCity (outside Rotator)."""
            self.count("revoke-by-hand")
            install, name = self.pick(data)
            self.world.revoke_by_hand(install, name)

        @rule(data=st.data(), force=st.booleans())
        def two_engines_race(self, data, force) -> None:
            self.count("race")
            install, name = self.pick(data)
            self.world.race(install, name, force=force)

        @precondition(
            lambda self: self.world is not None and len(self.world.installs["A"].active) < len(POOL)
        )
        @rule(data=st.data())
        def add_credential(self, data) -> None:
            self.count("config:add")
            a = self.world.installs["A"]
            name = data.draw(st.sampled_from([n for n in POOL if n not in a.active]))
            a.active.append(name)
            self.world.configure(a)

        @precondition(
            lambda self: self.world is not None and len(self.world.installs["A"].active) > 1
        )
        @rule(data=st.data())
        def remove_credential(self, data) -> None:
            self.count("config:remove")
            a = self.world.installs["A"]
            name = data.draw(st.sampled_from(list(a.active)))
            a.active.remove(name)
            self.world.configure(a)

        @precondition(
            lambda self: self.world is not None and len(self.world.installs["A"].active) < len(POOL)
        )
        @rule(data=st.data())
        def rename_credential(self, data) -> None:
            """An entry renamed (its conn_id follows the name): the old one is no longer
            managed, the new one may be a prefix of another (``ci-prod`` -> ``ci``)."""
            self.count("config:rename")
            a = self.world.installs["A"]
            old = data.draw(st.sampled_from(list(a.active)))
            new = data.draw(st.sampled_from([n for n in POOL if n not in a.active]))
            a.active[a.active.index(old)] = new
            self.world.configure(a)

    return TokenMachine


AIRFLOW_LOSE = {
    "apply": ("/auth/fab/v1/users/", "PATCH"),
    "login": ("/auth/token", "POST"),
    "check": ("/api/v2/dags", "GET"),
}
AIRFLOW_STEPS = {
    "10m": timedelta(minutes=10),
    "13h": timedelta(hours=13),
    "31d": timedelta(days=31),
}


def airflow_machine(ctx: dict[str, Any]) -> type[RuleBasedStateMachine]:
    """The airflow-password and airflow-token credentials through a real Airflow API server
    behind an ``OutageProxy`` (``ctx['airflow']``, ``ctx['proxy']``), on one store."""
    from tests.model.airflow_world import PASSWORD, TOKEN, AirflowWorld

    credentials = st.sampled_from([PASSWORD, TOKEN])
    faulted = st.sampled_from([PASSWORD, PASSWORD, TOKEN])
    """A fault matters most to the password (a value that cannot be revoked, only replaced)."""

    class AirflowMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world: AirflowWorld | None = None

        @initialize()
        def setup(self) -> None:
            self.world = AirflowWorld(
                ctx["sim"],
                ctx["admin_token"],
                ctx["store_kind"],
                ctx["servers"],
                ctx["tmp"],
                ctx["airflow"],
                ctx["proxy"],
                features=ctx.get("features", FEATURES),
            )
            ctx.setdefault("hooks", {})["world"] = self.world

        def teardown(self) -> None:
            if self.world is not None:
                self.world.proxy.clear()
                self.world.close()

        @invariant()
        def invariants(self) -> None:
            if self.world is not None:
                self.world.check()

        def a(self) -> Any:
            return self.world.installs["A"]

        def count(self, rule: str) -> None:
            STATS.rules[f"airflow {rule}"] += 1

        @rule(name=credentials, force=st.booleans())
        def rotate(self, name, force) -> None:
            self.count("rotate:force" if force else "rotate:due")
            self.world.run(self.a(), name, force=force)

        @rule(force=st.booleans())
        def rotate_all(self, force) -> None:
            self.count("rotate-all")
            self.world.run(self.a(), "", "rotate_all", force=force)

        @rule(name=faulted, point=st.sampled_from(POINTS), force=st.booleans())
        def crash(self, name, point, force) -> None:
            self.count("crash")
            if self.world.run(self.a(), name, crash_at=point, force=force).crashed:
                STATS.faults[f"crash {point}"] += 1

        def _airflow_away(self, name: str, at: str) -> None:
            """Airflow unreachable from ``at`` (a fault point, or ``start``) to the end of a
            forced run of ``name``."""
            self.count("airflow-down")
            w = self.world
            if at == "start":
                w.proxy.set_down(True)
            else:
                w.point_hooks[at] = lambda: w.proxy.set_down(True)
            try:
                w.run(self.a(), name, force=True)
            finally:
                w.point_hooks.clear()
                if w.proxy.down:
                    STATS.faults["airflow down"] += 1
                w.proxy.set_down(False)

        # One rule per moment Airflow can go away (hypothesis picks rules about evenly).
        @rule(name=faulted)
        def airflow_away_from_start(self, name) -> None:
            self._airflow_away(name, "start")

        @rule(name=faulted, when=st.sampled_from(["before:mint", "after:mint"]))
        def airflow_away_at_mint(self, name, when) -> None:
            self._airflow_away(name, when)

        @rule(name=faulted)
        def airflow_away_before_apply(self, name) -> None:
            self._airflow_away(name, "before:apply")

        @rule(name=faulted)
        def airflow_away_after_apply(self, name) -> None:
            """The password was accepted; verify cannot reach Airflow."""
            self._airflow_away(name, "after:apply")

        @rule(name=faulted, when=st.sampled_from(["before:verify", "before:push"]))
        def airflow_away_later(self, name, when) -> None:
            self._airflow_away(name, when)

        def _answer_lost(self, name: str, where: str, count: int) -> None:
            """Airflow carries the request out; its answer never arrives."""
            self.count("airflow-lose")
            w = self.world
            only, method = AIRFLOW_LOSE[where]
            lost = w.proxy.lost
            w.proxy.lose_next(count, only=only, method=method)
            try:
                w.run(self.a(), name, force=True)
            finally:
                w.proxy.clear()
                STATS.faults["airflow lose"] += w.proxy.lost - lost

        @rule(name=faulted, count=st.sampled_from([1, 2, 4]))
        def answer_lost_set_password(self, name, count) -> None:
            self._answer_lost(name, "apply", count)

        @rule(name=faulted, count=st.sampled_from([1, 2, 4]))
        def answer_lost_login(self, name, count) -> None:
            self._answer_lost(name, "login", count)

        @rule(name=faulted, count=st.sampled_from([1, 2, 4]))
        def answer_lost_token_check(self, name, count) -> None:
            self._answer_lost(name, "check", count)

        @rule(name=credentials, data=st.data(), nth=st.sampled_from([0, 1]), force=st.booleans())
        def store_fault(self, name, data, nth, force) -> None:
            self.count("store-fault")
            method = data.draw(st.sampled_from(WRITES + READS), label="method")
            modes = ["unavailable"]
            if method in CAS:
                modes.append("conflict")
            if method in WRITES:
                modes += ["applied-unavailable"] + (["applied-conflict"] if method in CAS else [])
            mode = data.draw(st.sampled_from(modes), label="mode")
            result = self.world.run(
                self.a(), name, fault=StoreFault(method, nth, mode), force=force
            )
            if result.struck is not None:
                STATS.faults[f"store {mode}"] += 1

        @rule(step=st.sampled_from(sorted(AIRFLOW_STEPS)))
        def advance_clock(self, step) -> None:
            self.count("advance-clock")
            self.world.clock.advance(AIRFLOW_STEPS[step])
            self.world.lapse_dead_leases()

        @rule(name=credentials)
        def rollback(self, name) -> None:
            self.count("rollback")
            self.world.run(self.a(), name, "rollback")

        @precondition(lambda self: FEATURES.run_pass)
        @rule(wait=st.sampled_from(sorted(AIRFLOW_STEPS)))
        def daemon_pass(self, wait) -> None:
            """One pass of ``rotator run``, ``wait`` after the last rule: what is due, then a
            proof of each current (a refused one is rotated at once)."""
            self.count("daemon-pass")
            self.world.clock.advance(AIRFLOW_STEPS[wait])
            self.world.run(self.a(), "", "run_pass")

        @rule(name=credentials)
        def password_changed_by_hand(self, name) -> None:
            """An administrator resets the bot's password at Airflow, outside Rotator (a
            password changed by hand is refused whichever credential logs in with it)."""
            self.count("password-by-hand")
            self.world.change_password_by_hand()

        @rule()
        def force_password_rotation(self) -> None:
            """``rotator rotate --force bot-password``; repeated, the quickest rotations."""
            self.count("rotate:force")
            self.world.run(self.a(), PASSWORD, force=True)

    return AirflowMachine
