"""Property-based: whatever a rotator.toml holds, loading it either succeeds or raises a
ConfigError that names the file; never another exception, never a secret echoed back."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotator.config import parse
from rotator.errors import ConfigError

KEYS = st.sampled_from(
    [
        "kind",
        "url",
        "auth",
        "mount",
        "path",
        "token",
        "token_env",
        "name",
        "type",
        "user",
        "conn_id",
        "every",
        "lifetime",
        "grace",
        "lead",
        "permissions",
        "login_from",
        "push",
        "project",
        "permission",
        "parameter",
        "teamcity_project",
        "parallel",
        "lock_ttl",
        "region",
        "surprise",
    ]
)
SCALARS = st.one_of(
    st.text(max_size=20),
    st.integers(-5, 10**6),
    st.booleans(),
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "7d",
            "0s",
            "1h30m",
            "file",
            "vault",
            "aws",
            "teamcity-token",
            "airflow-token",
            "airflow-password",
            "http://127.0.0.1:1",
            "hvs.CAESIsecret",
            "AKIAABCDEFGHIJKLMNOP",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS, c, max_size=4), max_leaves=10
)
TABLE = st.dictionaries(KEYS, VALUES, max_size=6)
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "store": TABLE,
        "teamcity": TABLE,
        "airflow": TABLE,
        "rotator": TABLE,
        "credentials": st.lists(TABLE, max_size=3),
        "surprise": VALUES,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENT)
def test_any_document_loads_or_is_refused_cleanly(document):
    try:
        config = parse(document, "fuzz.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml")
        assert "hvs.CAESIsecret" not in message and "AKIAABCDEFGHIJKLMNOP" not in message
        return
    assert config.store_kind in ("file", "vault", "aws")
    assert all(spec.path for spec in config.credentials)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_any_text_is_valid_toml_or_refused(text, tmp_path_factory):
    from rotator.config import load

    path = tmp_path_factory.mktemp("fuzz") / "rotator.toml"
    path.write_text(text)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        try:
            load(path)
        except ConfigError as exc:
            assert "not valid TOML" in str(exc)
            return
        raise AssertionError("invalid TOML was accepted") from None
    try:
        load(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
