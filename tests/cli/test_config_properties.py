"""Property-based: whatever a rotator.toml holds, loading it either succeeds or raises a
ConfigError that names the file; never another exception, never a secret echoed back."""

from __future__ import annotations

import tomllib
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotator.config import parse
from rotator.durations import MAX_DURATION, parse_duration
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
        "settle",
        "max_alive",
        "verify_every",
        "timeout",
        "retries",
        "verify_tls",
        "verify",
        "ca_bundle",
        "token_file",
        "state_prefix",
        "connections_prefix",
        "endpoint_url",
        "evrey",
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
            "https://admin:Hunter2pw9@tc.example.com",
            "http://Hunter2pw9@127.0.0.1:1",
            "999999999999d",
            "15m",
            "rotator/locks/x",
            "../up",
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
        assert "Hunter2pw9" not in message
        return
    assert config.store_kind in ("file", "vault", "aws")
    assert all(spec.path for spec in config.credentials)
    # What was accepted is what the rest of Rotator can rely on.
    state_prefix = config.store_options.get("state_prefix", "rotator")
    for spec in config.credentials:
        assert timedelta() <= spec.settle <= spec.grace
        assert spec.max_alive >= 2 and spec.verify_every > timedelta()
        assert not spec.path.startswith("/") and ".." not in spec.path.split("/")
        assert spec.path.startswith(f"{state_prefix}/values/") or not (spec.path + "/").startswith(
            state_prefix + "/"
        )
    urls = [s.url for s in (config.teamcity, config.airflow) if s is not None]
    urls += [config.store_options.get(k) for k in ("url", "endpoint_url")]
    assert not any("Hunter2pw9" in u for u in urls if isinstance(u, str))
    for settings_ in (config.teamcity, config.airflow):
        if settings_ is not None:
            assert 0 < settings_.timeout and settings_.retries >= 0


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.tuples(
            st.integers(0, 10**15).map(str) | st.text("0123456789", min_size=1, max_size=30),
            st.sampled_from("smhdw"),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_duration_parses_within_bounds_or_is_refused(parts):
    text = "".join(n + u for n, u in parts)
    try:
        value = parse_duration(text, where="f.toml: credentials[0].every", allow_zero=True)
    except ConfigError as exc:
        assert str(exc).startswith("f.toml: credentials[0].every: ")
        return
    assert timedelta() <= value <= MAX_DURATION


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
