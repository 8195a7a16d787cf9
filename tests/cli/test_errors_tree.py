"""Rotator's exceptions form one tree, drawn once (``rotator.errors``), and exit codes are mapped
in one place. The classes are found by importing every module of ``rotator`` and ``backends``,
so a new exception outside the tree, or one missing from the drawing, fails here."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import backends
import rotator
import rotator.errors
from rotator.errors import (
    ConfigError,
    ExitCode,
    LockHeld,
    Overtaken,
    RotatorError,
    StoreUnavailable,
    TargetUnavailable,
    Unavailable,
    exit_code_for,
    worst,
)

ROOT = Path(__file__).resolve().parents[2]

OUTSIDE_ON_PURPOSE = {
    "rotator.faults": "InjectedFault is a BaseException so that no handler catches a fake crash",
    "rotator.provider.": "the Airflow provider's tree is rooted at AirflowException, as Airflow "
    "expects of a task's errors; it is drawn in rotator.provider.teamcity.errors",
    "rotator.sim.": "the TeamCity simulator stands in for TeamCity: its errors are HTTP answers",
}
"""Module (or package, ending in ``.``) -> why its exceptions are not RotatorErrors."""


def _exempt(module: str) -> str | None:
    for prefix in OUTSIDE_ON_PURPOSE:
        if module == prefix or (prefix.endswith(".") and module.startswith(prefix)):
            return prefix
    return None


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined at the top level of a module of rotator or backends."""
    found: list[type[BaseException]] = []
    for package in (backends, rotator):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":  # running it is its import
                continue
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                    found.append(cls)
    return found


CLASSES = _exception_classes()
TREE = [c for c in CLASSES if issubclass(c, RotatorError)]


def _drawing() -> dict[str, set[str]]:
    """Each class drawn in rotator.errors' docstring -> the parents it is drawn under."""
    doc = rotator.errors.__doc__ or ""
    parents: dict[str, set[str]] = {}
    names_at: dict[int, str] = {}  # column where a drawn name starts -> the latest name there
    for line in doc.splitlines():
        if not (found := re.match(r"^(\s*(?:\|\s*)*)(\+-- )?([A-Z]\w+)", line)):
            continue
        column = found.start(3)
        if found.group(2) is None:
            if line.strip() != "RotatorError" and not line.lstrip().startswith("RotatorError "):
                continue
            parents["RotatorError"] = set()
        else:
            parent = names_at.get(found.start(2) - 1)
            assert parent, f"no parent above {line!r}"
            parents.setdefault(found.group(3), set()).add(parent)
        names_at[column] = found.group(3)
    return parents


def test_the_walk_finds_the_tree_and_the_exceptions_outside_it() -> None:
    names = {c.__name__ for c in TREE}
    assert {"RotatorError", "ForeignCredential", "RefusedPush", "Unavailable", "Rejected"} <= names
    assert {_exempt(c.__module__) for c in CLASSES} >= set(OUTSIDE_ON_PURPOSE)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_exception_is_a_rotator_error_or_outside_on_purpose(cls: type) -> None:
    assert issubclass(cls, RotatorError) or _exempt(cls.__module__), (
        f"{cls.__module__}.{cls.__name__} is not in the tree: derive it from the right "
        "RotatorError class and draw it in rotator/errors.py, or list it in OUTSIDE_ON_PURPOSE"
    )


def test_the_drawing_is_the_tree() -> None:
    """Every class is drawn under each of its tree parents, and nothing else is drawn."""
    by_name = {c.__name__: c for c in TREE}
    assert len(by_name) == len(TREE), "two exception classes share a name"
    actual = {
        c.__name__: {b.__name__ for b in c.__bases__ if issubclass(b, RotatorError)} for c in TREE
    }
    assert _drawing() == actual


def test_backends_errors_does_not_draw_a_second_tree() -> None:
    import backends.errors

    assert "+--" not in (backends.errors.__doc__ or "")
    assert "rotator.errors" in (backends.errors.__doc__ or "")


def test_one_class_catches_either_side_unreachable() -> None:
    for cls in (StoreUnavailable, TargetUnavailable):
        with pytest.raises(Unavailable):
            raise cls("down")


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_exit_code_for_each_error(cls: type[RotatorError]) -> None:
    exc = cls.__new__(cls)  # constructors differ; the mapping reads the class only
    expected = (
        2
        if issubclass(cls, ConfigError)
        else 3
        if issubclass(cls, LockHeld | Overtaken)
        else ExitCode.FAILED
    )
    assert exit_code_for(exc) == expected


def test_exit_codes_of_errors_not_ours_and_their_values() -> None:
    assert exit_code_for(RuntimeError("boom")) == 1
    assert exit_code_for(KeyError("k")) == 1
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([0, 0], 0),
        ([0, 3], 3),
        ([3, 1, 0], 1),
        ([1, 3, 2, 0], 2),
        ([2, 2], 2),
    ],
)
def test_the_worst_code_wins(codes: list[int], expected: int) -> None:
    assert worst(iter(codes)) == expected
    assert worst(reversed(codes)) == expected


def test_readme_exit_code_table_lists_every_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| exit code | meaning |", 1)[1].split("\n\n", 1)[0]
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert codes == [int(c) for c in ExitCode]


def test_the_dags_copied_exit_codes_match() -> None:
    """The DAG keeps its own copy (it may be parsed where Rotator is not installed)."""
    tree = ast.parse((ROOT / "ops/airflow/dags/rotator_rotations.py").read_text())
    copied: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
            names = [t.id for t in node.targets[0].elts if isinstance(t, ast.Name)]
            if all(n.startswith("EXIT_") for n in names):
                copied.update(zip(names, ast.literal_eval(node.value), strict=True))
    assert copied == {"EXIT_BAD_INPUT": ExitCode.BAD_INPUT, "EXIT_LOCKED": ExitCode.LOCKED}
