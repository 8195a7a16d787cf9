"""Every store, issuer and sink keeps the shape of the protocols the engine uses it through.

The protocols are structural, so nothing at import time notices a method added to a protocol
that one implementation lacks, or a parameter renamed in one implementation: the engine would
fail only when it calls it, on that one store or target. These tests compare each class with
each protocol it is used as (method names, parameter names, kinds and defaults, read with
``inspect.signature``), find the issuers and sinks by walking their packages (a new one is
covered without editing this file), and hold the protocols themselves to their promise that
every method states its contract.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest

import rotator.issuers
import rotator.sinks
from backends.lease import CasLeases
from backends.store import JournalStore, LeaseLock, Store, VersionStore, store_class
from rotator.issuers import Issuer, StagedIssuer
from rotator.sinks import Sink
from rotator.spec import AirflowSettings, TeamCitySettings

STORE_KINDS = ("file", "vault", "aws")
STORE_PROTOCOLS = (VersionStore, LeaseLock, JournalStore, Store)
ALL_PROTOCOLS = (*STORE_PROTOCOLS, Issuer, StagedIssuer, Sink)
ROTATOR = Path(__file__).resolve().parents[2] / "rotator"


# -- reading a protocol and comparing a class with it -------------------------------------------


def is_protocol(cls: type) -> bool:
    """PEP 544: a protocol names ``Protocol`` among its bases, even one extending another; a
    class that merely inherits from a protocol does not."""
    return Protocol in cls.__bases__


def _protocol_classes(proto: type) -> list[type]:
    """``proto`` and the protocols it extends."""
    return [c for c in proto.__mro__ if is_protocol(c)]


def protocol_methods(proto: type) -> dict[str, Callable[..., Any]]:
    """The public methods ``proto`` declares, its base protocols' included."""
    methods: dict[str, Callable[..., Any]] = {}
    for cls in reversed(_protocol_classes(proto)):
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                methods[name] = value
    return methods


def protocol_attributes(proto: type) -> set[str]:
    """The public data members ``proto`` declares (``kind``, ``type``)."""
    return {
        name
        for cls in _protocol_classes(proto)
        for name in vars(cls).get("__annotations__", {})
        if not name.startswith("_")
    }


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    params = list(inspect.signature(fn).parameters.values())
    return params[1:] if params and params[0].name == "self" else params


def signature_problems(name: str, declared: Callable[..., Any], found: Any) -> list[str]:
    """How ``found`` could not be called the way ``declared`` promises callers they may call it:
    the same positional parameters in the same order, every keyword accepted, every default
    kept (a different default silently changes what a caller gets), no extra required one."""
    if not callable(found):
        return [f"{name}: not a method"]
    want, have = _parameters(declared), _parameters(found)
    by_name = {p.name: p for p in have}
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    out: list[str] = []
    want_positional = [p.name for p in want if p.kind in positional]
    have_positional = [p.name for p in have if p.kind in positional]
    if have_positional[: len(want_positional)] != want_positional:
        out.append(f"{name}: positional parameters {have_positional}, expected {want_positional}")
    for p in want:
        got = by_name.get(p.name)
        if got is None:
            out.append(f"{name}: no parameter {p.name!r}")
            continue
        if p.kind is inspect.Parameter.KEYWORD_ONLY and got.kind not in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            out.append(f"{name}: {p.name!r} cannot be passed by keyword")
        if p.default is not inspect.Parameter.empty and got.default != p.default:
            out.append(f"{name}: {p.name!r} defaults to {got.default!r}, expected {p.default!r}")
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for p in have:
        required = p.default is inspect.Parameter.empty and p.kind not in variadic
        if p.name not in {w.name for w in want} and required:
            out.append(f"{name}: extra required parameter {p.name!r}")
    return out


def _defined_by(cls: type, name: str) -> type | None:
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def problems(cls: type, proto: type) -> list[str]:
    """Everything that keeps ``cls`` from being used as ``proto``; ``[]`` when it can be."""
    out = [f"{a}: missing" for a in sorted(protocol_attributes(proto)) if not hasattr(cls, a)]
    for name, declared in sorted(protocol_methods(proto).items()):
        owner = _defined_by(cls, name)
        if owner is None:
            out.append(f"{name}: missing")
        elif is_protocol(owner):
            out.append(f"{name}: only the protocol's empty stub")
        else:
            out.extend(signature_problems(name, declared, getattr(cls, name)))
    return out


def _classes_in(package: Any, suffix: str) -> list[type]:
    """Every class named ``*<suffix>`` defined in a module of ``package``, protocols excluded."""
    found: list[type] = []
    modules = [package] + [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and cls.__name__.endswith(suffix):
                if not is_protocol(cls):
                    found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


ISSUERS = _classes_in(rotator.issuers, "Issuer")
SINKS = _classes_in(rotator.sinks, "Sink")


# -- the checker catches what it is for ---------------------------------------------------------


class _Shape(Protocol):
    kind: ClassVar[str]

    def read(self, path: str, stage: str = "current") -> None: ...

    def write(self, path: str, *, lease: object | None = None) -> None: ...


class _Stubbed(_Shape):
    kind: ClassVar[str] = "stubbed"

    def read(self, path: str, stage: str = "current") -> None: ...


DROP = object()
"""In a case below: the member is left out of the class."""


def _fits_shape() -> dict[str, Any]:
    return {
        "kind": "x",
        "read": lambda self, path, stage="current": None,
        "write": lambda self, path, *, lease=None: None,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kind": DROP, "write": DROP}, ["kind: missing", "write: missing"]),
        (
            {"read": lambda self, name, stage="current": None},
            ["read: positional parameters", "read: no parameter 'path'", "read: extra required"],
        ),
        ({"read": lambda self, path, stage: None}, ["read: 'stage' defaults to"]),
        ({"read": lambda self, path, stage="previous": None}, ["read: 'stage' defaults to"]),
        ({"read": lambda self, path, stage="current", *, force: None}, ["read: extra required"]),
        ({"write": lambda self, path, *args: None}, ["write: no parameter 'lease'"]),
        ({"write": lambda self, path, lease=None, /: None}, ["write: 'lease' cannot be passed"]),
        ({"read": 3}, ["read: not a method"]),
    ],
)
def test_the_checker_catches_a_class_that_does_not_fit(change, expected):
    assert problems(type("Fits", (), _fits_shape()), _Shape) == []
    members = {k: v for k, v in {**_fits_shape(), **change}.items() if v is not DROP}
    found = problems(type("Broken", (), members), _Shape)
    assert all(any(f.startswith(e) for f in found) for e in expected), found
    assert len(found) == len(expected), found


def test_the_checker_does_not_take_an_inherited_protocol_stub_for_a_method():
    assert problems(_Stubbed, _Shape) == ["write: only the protocol's empty stub"]


# -- the protocols -------------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ALL_PROTOCOLS, ids=lambda p: p.__name__)
def test_every_protocol_method_states_its_contract(proto):
    methods = protocol_methods(proto)
    assert methods
    undocumented = [n for n, fn in methods.items() if len((fn.__doc__ or "").split()) < 5]
    assert undocumented == [], f"{proto.__name__}: give these a contract docstring"


def test_store_is_exactly_its_three_concerns_plus_close():
    concerns = [set(protocol_methods(p)) for p in (VersionStore, LeaseLock, JournalStore)]
    assert not (concerns[0] & concerns[1] or concerns[0] & concerns[2] or concerns[1] & concerns[2])
    assert set(protocol_methods(Store)) == set().union(*concerns) | {"close"}
    assert protocol_attributes(Store) == {"kind"}


# -- the stores ----------------------------------------------------------------------------------


@pytest.mark.parametrize("proto", STORE_PROTOCOLS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_every_store_class_fits_every_store_protocol(kind, proto):
    cls = store_class(kind)
    assert cls.kind == kind
    assert problems(cls, proto) == []


def test_cas_leases_is_the_lease_lock_and_journal_of_vault_and_aws():
    """What ``Store``'s docstring says: CasLeases is the JournalStore and the LeaseLock (bar
    ``lock_names``, a listing each store makes its own way) of every store built on it."""
    assert problems(CasLeases, JournalStore) == []
    assert [p for p in problems(CasLeases, LeaseLock) if not p.startswith("lock_names:")] == []
    taken = (set(protocol_methods(LeaseLock)) | set(protocol_methods(JournalStore))) - {
        "lock_names"
    }
    for kind in ("vault", "aws"):
        cls = store_class(kind)
        assert issubclass(cls, CasLeases)
        assert {n: _defined_by(cls, n) for n in taken} == dict.fromkeys(taken, CasLeases)


# -- the issuers and the sink ------------------------------------------------------------------


def _instances() -> dict[type, Any]:
    """One of each issuer and sink, built the way ``rotator.issuers.registry`` builds them
    (their clients are made on first use: no request here)."""
    teamcity = TeamCitySettings(url="https://teamcity.invalid")
    airflow = AirflowSettings(url="https://airflow.invalid")
    from rotator.issuers.airflow import AirflowPasswordIssuer, AirflowTokenIssuer
    from rotator.issuers.teamcity import TeamCityTokenIssuer
    from rotator.sinks.teamcity_parameters import TeamCityParameterSink

    return {
        TeamCityTokenIssuer: TeamCityTokenIssuer(teamcity),
        AirflowPasswordIssuer: AirflowPasswordIssuer(airflow),
        AirflowTokenIssuer: AirflowTokenIssuer(airflow, lambda spec: ("bot", "unused")),
        TeamCityParameterSink: TeamCityParameterSink(teamcity),
    }


def test_the_issuers_and_sinks_are_found():
    names = {c.__name__ for c in ISSUERS + SINKS}
    assert names >= {
        "TeamCityTokenIssuer",
        "AirflowPasswordIssuer",
        "AirflowTokenIssuer",
        "TeamCityParameterSink",
    }
    assert set(_instances()) == set(ISSUERS + SINKS), "build the new class in _instances()"


@pytest.mark.parametrize("cls", ISSUERS, ids=lambda c: c.__name__)
def test_every_issuer_fits_issuer(cls):
    assert problems(cls, Issuer) == []
    assert isinstance(cls.type, str) and cls.type
    assert isinstance(_instances()[cls], Issuer)


def test_issuer_types_are_distinct():
    types = [cls.type for cls in ISSUERS]
    assert len(types) == len(set(types))


@pytest.mark.parametrize("cls", ISSUERS, ids=lambda c: c.__name__)
def test_an_issuer_is_staged_wholly_or_not_at_all(cls):
    """The engine takes the staged path on ``isinstance(issuer, StagedIssuer)``: a class with
    half of ``prepare``/``apply`` would silently take the other path."""
    staged = set(protocol_methods(StagedIssuer)) - set(protocol_methods(Issuer))
    has = {name for name in staged if hasattr(cls, name)}
    assert has in (set(), staged)
    assert (problems(cls, StagedIssuer) == []) == (has == staged)
    assert isinstance(_instances()[cls], StagedIssuer) == (has == staged)


def test_only_the_password_issuer_is_staged():
    assert [c.__name__ for c in ISSUERS if isinstance(_instances()[c], StagedIssuer)] == [
        "AirflowPasswordIssuer"
    ]


@pytest.mark.parametrize("cls", SINKS, ids=lambda c: c.__name__)
def test_every_sink_fits_sink(cls):
    assert problems(cls, Sink) == []
    assert isinstance(_instances()[cls], Sink)


def test_the_engine_never_looks_up_an_issuer_method_by_name():
    """Staged or not is ``isinstance(issuer, StagedIssuer)``; ``getattr``/``hasattr`` on an
    issuer would hide a method from the protocols and from the tests above."""
    pattern = re.compile(r"\b(getattr|hasattr)\(\s*[\w.]*issuer", re.IGNORECASE)
    hits = [
        f"{path.relative_to(ROTATOR.parent)}:{number}: {line.strip()}"
        for path in sorted(ROTATOR.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert pattern.search("getattr(run.issuer, 'prepare', None)")
    assert hits == []
