"""``[identity]`` of rotator.toml: whose tokens the trigger endpoint accepts, and the
``[[identity.allow]]`` rules (``policy.py``) that say what they may trigger.

::

    [identity]
    issuer = "https://teamcity.example.com/app/oidc-jwt"   # pinned: the token's iss, exactly
    audience = "airflow-trigger"          # the token's aud must contain exactly this
    # jwks_url = "<issuer>/.well-known/jwks"   (the plugin's; https unless loopback)
    # algorithms = ["RS256"]               RS/PS/ES only: none and HMAC are refused
    # leeway = "30s"; max_age = "2h"; jwks_ttl = "5m"; jwks_refetch = "30s"; timeout = 5

    [[identity.allow]]
    build_type_external_id = "DataPipelines_Publish"
    branch_is_default = true
    dags = ["publish_*"]
    conf_keys = ["artifact"]

Validated like the rest of the file (``rotator.config``): unknown keys get "did you mean",
wrong types name the key and never the value, and a secret-looking value is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from rotator.errors import ConfigError
from rotator.identity.policy import IDENTITY_KEYS, Policy, Rule

ASYMMETRIC_ALGORITHMS = (
    *("RS256", "RS384", "RS512"),
    *("PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512"),
)
"""What ``algorithms`` may list: signatures a public key verifies. ``none`` and HMAC (HS*) are
never accepted: an HMAC "key" would be the public JWKS, which anybody can read."""
MAX_RULE_RUNS = 100
_DAG_ID = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]{1,250}")


@dataclass(frozen=True)
class IdentitySettings:
    issuer: str
    audience: str
    jwks_url: str
    algorithms: tuple[str, ...] = ("RS256",)
    leeway: timedelta = timedelta(seconds=30)
    max_age: timedelta = timedelta(hours=2)
    """The oldest ``iat`` accepted, whatever ``exp`` says: a build token in parameters lives
    as long as the build's timeout, and this bounds how long a stolen one is worth anything."""
    jwks_ttl: timedelta = timedelta(minutes=5)
    """How long fetched keys are trusted without a refetch; past it, and unable to refetch,
    every request is refused (fail closed)."""
    jwks_refetch: timedelta = timedelta(seconds=30)
    """At most one fetch per this interval for a token with an unknown ``kid``."""
    timeout: float = 5.0
    policy: Policy = field(default_factory=Policy)


def parse_identity(source: str, data: Any, table_class: type, url_check: Any) -> IdentitySettings:
    """``[identity]`` from rotator.toml. ``table_class``/``url_check`` are rotator.config's
    validating table and URL check (passed in so this module does not import config.py,
    which imports it)."""
    table = table_class(source, "identity", data)
    issuer = table.get("issuer", str, required=True)
    url_check(source, table.key("issuer"), issuer, True, "")
    audience = table.get("audience", str, required=True)
    if not audience.strip():
        raise table.err("audience", "a non-empty string")
    jwks_url = table.get("jwks_url", str, issuer.rstrip("/") + "/.well-known/jwks")
    warnings = url_check(source, table.key("jwks_url"), jwks_url, True, "")
    if urlsplit(jwks_url).scheme != "https" and warnings:
        raise ConfigError(
            f"{source}: identity.jwks_url: the keys that decide who may trigger DAGs must come "
            "over https (plain http is accepted on loopback only)"
        )
    algorithms = table.get("algorithms", list, ["RS256"])
    bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if not algorithms or bad:
        raise table.err(
            "algorithms",
            "a non-empty list of " + ", ".join(ASYMMETRIC_ALGORITHMS) + " (none/HMAC are refused)",
            show_type=False,
        )
    settings = IdentitySettings(
        issuer=issuer,
        audience=audience,
        jwks_url=jwks_url,
        algorithms=tuple(dict.fromkeys(algorithms)),
        leeway=table.duration("leeway", timedelta(seconds=30), allow_zero=True),
        max_age=table.duration("max_age", timedelta(hours=2)),
        jwks_ttl=table.duration("jwks_ttl", timedelta(minutes=5)),
        jwks_refetch=table.duration("jwks_refetch", timedelta(seconds=30), allow_zero=True),
        timeout=table.number("timeout", 5.0),
        policy=Policy(
            tuple(
                _rule(source, i, item, table_class)
                for i, item in enumerate(table.get("allow", list, []))
            )
        ),
    )
    table.done()
    if settings.jwks_refetch > settings.jwks_ttl:
        raise table.err("jwks_refetch", "at most jwks_ttl", show_type=False)
    if settings.leeway > timedelta(minutes=5):
        raise table.err("leeway", "at most 5m (clock skew, not a lifetime)", show_type=False)
    return settings


def _rule(source: str, index: int, data: Any, table_class: type) -> Rule:
    table = table_class(source, f"identity.allow[{index}]", data)
    values: dict[str, Any] = {}
    for key in (*IDENTITY_KEYS, "name", "branch_name", "branch_glob"):
        value = table.get(key, str)
        if value is not None:
            if not value.strip():
                raise table.err(key, "a non-empty string")
            values[key] = value
    for key in ("branch_is_default", "allow_personal"):
        value = table.get(key, bool)
        if value is not None:
            values[key] = value
    dags = table.get("dags", list, required=True)
    if not dags or not all(isinstance(d, str) and _DAG_ID.fullmatch(d) for d in dags):
        raise table.err("dags", "a non-empty list of DAG ids or globs", show_type=False)
    conf_keys = table.get("conf_keys", list, [])
    if not all(isinstance(k, str) and k for k in conf_keys):
        raise table.err("conf_keys", "a list of conf key names", show_type=False)
    max_runs = table.get("max_runs", int, 1)
    if not 1 <= max_runs <= MAX_RULE_RUNS:
        raise table.err("max_runs", f"an integer from 1 to {MAX_RULE_RUNS}", show_type=False)
    table.done()
    if not any(key in values for key in IDENTITY_KEYS):
        raise ConfigError(
            f"{source}: identity.allow[{index}]: names no build: set at least one of "
            + ", ".join(IDENTITY_KEYS)
            + " (a rule without one would let every build of the server trigger these DAGs)"
        )
    return Rule(
        where=f"identity.allow[{index}]",
        dags=tuple(dags),
        conf_keys=tuple(conf_keys),
        max_runs=max_runs,
        **values,
    )
