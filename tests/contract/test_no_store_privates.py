"""No test reaches into a store's private attributes: what a test needs from the backend goes
through ``tests.fixtures.store_harness``, so a store can change its insides without breaking
tests that then check nothing real.

The private names are read from the store classes themselves (their methods, properties and
``self._x =`` assignments), so a new private helper is covered without editing this file.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from backends.aws import AwsStore
from backends.file import FileStore
from backends.vault import VaultStore

TESTS = Path(__file__).resolve().parents[1]
ALLOWED = {Path(__file__).resolve(), TESTS / "fixtures" / "store_harness.py"}


def store_private_names() -> set[str]:
    names: set[str] = set()
    for store_class in (FileStore, VaultStore, AwsStore):
        for cls in store_class.__mro__:
            if cls is object or cls.__module__ in ("typing", "builtins"):
                continue
            names |= {n for n in vars(cls) if n.startswith("_") and not n.startswith("__")}
            names |= set(re.findall(r"self\.(_[a-z]\w*)\s*[:=]", inspect.getsource(cls)))
    return names


def private_access_pattern() -> re.Pattern[str]:
    """``x._name`` for a store's private ``_name`` on anything but ``self``, and any private
    attribute of a name that says it is a store."""
    names = "|".join(sorted(store_private_names()))
    return re.compile(rf"(?<!\bself)\.({names})\b|\b\w*store\w*\)?\._[a-z]\w*", re.IGNORECASE)


def test_the_pattern_catches_what_it_is_for():
    pattern = private_access_pattern()
    for bad in ("store._sm.put_secret_value(", "s._current_version(p)", "x._labels(p)"):
        assert pattern.search(bad), bad
    for fine in ("self._lock", "store.read(p)", "def test_a_new_holder()", "os._exit(1)"):
        assert not pattern.search(fine), fine


def test_no_test_touches_a_private_attribute_of_a_store():
    pattern = private_access_pattern()
    hits = [
        f"{path.relative_to(TESTS.parent)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.resolve() not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == [], "use tests/fixtures/store_harness.py instead:\n" + "\n".join(hits)
