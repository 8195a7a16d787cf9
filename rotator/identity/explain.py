"""``rotator identity check --token-file F --dag D [--conf-key K ...] [--jwks-file J]``: what
the trigger endpoint would decide for this token, and why, without triggering anything.

With ``--jwks-file`` (the JWKS saved from ``<issuer>/.well-known/jwks``) nothing touches the
network; without it the configured ``jwks_url`` is fetched once. The run budget (``max_runs``)
is the endpoint's memory, not the token's: it is reported, not checked. The token is read from
a file (never argv, where other users of the machine can read it) and never printed: only the
claims that name the build are.

Exit codes: 0 allowed, 1 denied (401/403/503), 2 bad input (config, unreadable files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rotator.errors import ConfigError
from rotator.identity.gate import IDENTITY_CLAIMS, Gate
from rotator.identity.jwks import JwksCache
from rotator.identity.verify import Verifier

SHOWN_CLAIMS = (*IDENTITY_CLAIMS, "branch_name", "branch_is_default", "is_personal", "exp")


def check(
    config: Any, token_file: str, dag_id: str, conf_keys: list[str], jwks_file: str | None
) -> dict[str, Any]:
    """The decision as a document: ``allowed``, ``status``, ``reason``, ``rule``, the
    build's claims and, when denied by the policy, why each rule did not allow it."""
    settings = config.identity
    if settings is None:
        raise ConfigError(f"{config.source}: no [identity] table: every trigger is denied")
    token = _read(token_file, "--token-file").strip()
    fetch = None
    if jwks_file is not None:
        try:
            document = json.loads(_read(jwks_file, "--jwks-file"))
        except ValueError:
            raise ConfigError(f"--jwks-file: {jwks_file} is not JSON") from None

        def fetch(url: str, timeout: float) -> dict[str, Any]:
            return document  # type: ignore[no-any-return]

    verifier = Verifier.from_settings(settings)
    if fetch is not None:
        verifier.jwks = JwksCache(settings.jwks_url, fetch=fetch)
    gate = Gate(settings, verifier=verifier)
    verified = gate.authenticate(token)
    out: dict[str, Any] = {"dag_id": dag_id, "conf_keys": conf_keys}
    if not verified.allowed:
        return {**out, "allowed": False, "status": verified.status, "reason": verified.reason}
    claims = verified.claims
    verdict = settings.policy.evaluate(claims, dag_id, conf_keys)
    out["claims"] = {k: claims[k] for k in SHOWN_CLAIMS if k in claims}
    if verdict.rule is None:
        return {
            **out,
            "allowed": False,
            "status": 403,
            "reason": verdict.summary,
            "rules": list(verdict.reasons),
        }
    return {
        **out,
        "allowed": True,
        "status": 200,
        "reason": f"allowed by {verdict.rule.label}",
        "rule": verdict.rule.label,
        "max_runs": verdict.rule.max_runs,
        "triggering_user": gate.judge(claims, dag_id, conf_keys).triggering_user,
    }


def render(report: dict[str, Any]) -> str:
    """The report for a person: the verdict first, then the build and each rule's answer."""
    word = "ALLOWED" if report["allowed"] else f"DENIED ({report['status']})"
    lines = [f"{word}: {report['reason']}"]
    for key, value in report.get("claims", {}).items():
        lines.append(f"  {key}: {value}")
    for reason in report.get("rules", []):
        lines.append(f"  - {reason}")
    if report["allowed"]:
        lines.append(
            f"  runs per token: {report['max_runs']}; the run's user: {report['triggering_user']}"
        )
    return "\n".join(lines)


def _read(path: str, option: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option}: cannot read {path}: {exc}") from None
