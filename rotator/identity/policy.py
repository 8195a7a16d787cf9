"""``[[identity.allow]]``: which TeamCity builds may trigger which DAGs, deny by default.

A rule names who (at least one of ``sub``, ``sub_glob``, ``project_external_id``,
``build_type_external_id``; optionally ``branch_name``/``branch_glob`` and
``branch_is_default``), what (``dags``: exact DAG ids, or globs when they hold ``*``, ``?`` or
``[``), which ``conf`` keys may come along (``conf_keys``, default none) and how many runs one
token may start (``max_runs``, default 1). Every constraint a rule states must hold; the first
rule (in file order) that holds allows. Nothing else does: a rule that names nobody is bad
input, because it would let every build of the server through.

Personal builds (``is_personal`` not exactly ``false``, or a ``sub`` whose parts carry the
``user{id}_`` prefix TeamCity gives them) are someone's uncommitted code: refused unless the
rule says ``allow_personal = true``.

Claims are compared by type as well as value: a ``branch_is_default`` of ``"true"`` (a string)
is not ``true``; a missing claim never matches a rule that names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

GLOB_CHARS = frozenset("*?[")
IDENTITY_KEYS = ("sub", "sub_glob", "project_external_id", "build_type_external_id")
"""A rule must name at least one of these: they say which build configurations it trusts."""
_PERSONAL_PART = re.compile(r"user\d+_")


def is_glob(pattern: str) -> bool:
    return any(ch in GLOB_CHARS for ch in pattern)


def is_personal(claims: Mapping[str, Any]) -> bool:
    """True unless the token says plainly that the build is not personal (fail closed)."""
    if claims.get("is_personal") is not False:
        return True
    sub = claims.get("sub")
    return isinstance(sub, str) and any(_PERSONAL_PART.match(p) for p in sub.split(":"))


@dataclass(frozen=True)
class Rule:
    """One ``[[identity.allow]]`` table (validated by ``rotator.identity.settings``)."""

    where: str  # "identity.allow[0]", for messages and the audit trail
    dags: tuple[str, ...]
    name: str | None = None
    sub: str | None = None
    sub_glob: str | None = None
    project_external_id: str | None = None
    build_type_external_id: str | None = None
    branch_name: str | None = None
    branch_glob: str | None = None
    branch_is_default: bool | None = None
    allow_personal: bool = False
    conf_keys: tuple[str, ...] = ()
    max_runs: int = 1

    @property
    def label(self) -> str:
        return f"{self.where} ({self.name})" if self.name else self.where

    def identity_mismatch(self, claims: Mapping[str, Any]) -> str | None:
        """Why this rule does not trust the build behind ``claims``, or None if it does."""
        sub = claims.get("sub")
        if self.sub is not None and sub != self.sub:
            return "sub is not " + self.sub
        if self.sub_glob is not None and not (
            isinstance(sub, str) and fnmatchcase(sub, self.sub_glob)
        ):
            return "sub does not match " + self.sub_glob
        for key in ("project_external_id", "build_type_external_id", "branch_name"):
            wanted = getattr(self, key)
            if wanted is not None and claims.get(key) != wanted:
                return f"{key} is not {wanted}"
        branch = claims.get("branch_name")
        if self.branch_glob is not None and not (
            isinstance(branch, str) and fnmatchcase(branch, self.branch_glob)
        ):
            return "branch_name does not match " + self.branch_glob
        if self.branch_is_default is not None and claims.get("branch_is_default") is not (
            self.branch_is_default
        ):
            return f"branch_is_default is not {str(self.branch_is_default).lower()}"
        if not self.allow_personal and is_personal(claims):
            return "a personal build (the rule does not set allow_personal)"
        return None

    def allows_dag(self, dag_id: str) -> bool:
        return any(
            fnmatchcase(dag_id, pattern) if is_glob(pattern) else dag_id == pattern
            for pattern in self.dags
        )

    def forbidden_conf(self, conf_keys: Iterable[str]) -> list[str]:
        return sorted(set(conf_keys) - set(self.conf_keys))


@dataclass(frozen=True)
class Verdict:
    """What the policy says about one request: the rule that allows it, or why none does
    (one line per rule, for ``rotator identity check`` and the audit trail)."""

    rule: Rule | None
    reasons: tuple[str, ...]
    """Per rule ``"<label>: <why not>"``; empty when ``rule`` allows."""

    @property
    def allowed(self) -> bool:
        return self.rule is not None

    @property
    def summary(self) -> str:
        """One sentence for a 403: the closest miss (a rule that trusts the build but not
        this DAG or conf) before identity mismatches."""
        if self.rule is not None:
            return f"allowed by {self.rule.label}"
        if not self.reasons:
            return "no [[identity.allow]] rule is configured: every trigger is denied"
        near = [r for r in self.reasons if "DAG" in r or "conf key" in r]
        return "denied: " + (near or list(self.reasons))[0]


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()

    def evaluate(
        self, claims: Mapping[str, Any], dag_id: str, conf_keys: Iterable[str] = ()
    ) -> Verdict:
        """The first rule that trusts the build, lists the DAG and every conf key; else why
        each rule refused. Deny by default: no rules, no trigger."""
        keys = list(conf_keys)
        reasons = []
        for rule in self.rules:
            why = rule.identity_mismatch(claims)
            if why is None and not rule.allows_dag(dag_id):
                why = f"DAG {dag_id!r} is not in its dags"
            if why is None:
                extra = rule.forbidden_conf(keys)
                if extra:
                    why = "conf key(s) not in its conf_keys: " + ", ".join(map(repr, extra))
            if why is None:
                return Verdict(rule, ())
            reasons.append(f"{rule.label}: {why}")
        return Verdict(None, tuple(reasons))
