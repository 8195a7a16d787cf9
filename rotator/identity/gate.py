"""One trigger request, decided: verify the token, ask the policy, spend the token's run budget;
then record the decision as an audit event and a metric.

``Gate.decide`` answers with a ``Decision`` carrying the HTTP status the endpoint returns:
401 (the token proves nothing), 403 (a real build, not allowed this), 409 (its run budget is
spent), 503 (the issuer's keys are unavailable: fail closed), or 200 with the rule that
allows. What is recorded names the build (``sub``, build type, build id, ``jti``) and the
reason, never the token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotator.identity.replay import ReplayCounter
from rotator.identity.settings import IdentitySettings
from rotator.identity.verify import Rejected, Unverifiable, Verifier

IDENTITY_CLAIMS = ("sub", "project_external_id", "build_type_external_id", "build_id", "jti")
AUDIT_NAME = "identity"
"""The ``credential`` field of identity audit events (``rotator history identity``)."""

Metric = Callable[[str, Mapping[str, str]], None]


@dataclass(frozen=True)
class Decision:
    status: int
    reason: str
    rule: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)
    run_number: int | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200

    @property
    def identity(self) -> dict[str, Any]:
        """What the audit trail says about the caller (claims of a verified token only)."""
        return {k: self.claims[k] for k in IDENTITY_CLAIMS if k in self.claims}

    @property
    def triggering_user(self) -> str:
        """``teamcity:<build type external id>#<build id>``: the run's triggering user, and
        the key that lets a build read back only its own runs."""
        return triggering_user(self.claims)


def triggering_user(claims: Mapping[str, Any]) -> str:
    return f"teamcity:{claims.get('build_type_external_id')}#{claims.get('build_id')}"


class Gate:
    def __init__(
        self,
        settings: IdentitySettings,
        *,
        verifier: Verifier | None = None,
        replay: ReplayCounter | None = None,
        audit: Any = None,
        metric: Metric | None = None,
    ) -> None:
        self.settings = settings
        self.verifier = verifier or Verifier.from_settings(settings)
        self.replay = replay or ReplayCounter()
        self.audit, self.metric = audit, metric

    def authenticate(self, token: str | None) -> Decision:
        """Only the token: 200 with its claims, or 401/503 (used by the read-back route)."""
        if not token:
            return Decision(401, "no bearer token")
        try:
            return Decision(200, "verified", claims=self.verifier.verify(token))
        except Rejected as exc:
            return Decision(401, exc.reason)
        except Unverifiable as exc:
            return Decision(503, f"cannot verify tokens now: {exc}")

    def decide(self, token: str | None, dag_id: str, conf_keys: Iterable[str] = ()) -> Decision:
        """Verify, match, spend one run of the token's budget (see the module docstring)."""
        verified = self.authenticate(token)
        if not verified.allowed:
            return verified
        return self.judge(verified.claims, dag_id, conf_keys)

    def judge(
        self, claims: Mapping[str, Any], dag_id: str, conf_keys: Iterable[str] = ()
    ) -> Decision:
        """The policy and the run budget for an already verified token's ``claims``."""
        verdict = self.settings.policy.evaluate(claims, dag_id, conf_keys)
        if verdict.rule is None:
            return Decision(403, verdict.summary, claims=claims)
        rule = verdict.rule
        jti, exp = claims.get("jti"), claims.get("exp")
        if not isinstance(jti, str) or not jti or not isinstance(exp, int | float):
            return Decision(401, "the token's jti or exp is malformed", claims=claims)
        number = self.replay.reserve(jti, rule.max_runs, float(exp))
        if number is None:
            return Decision(
                409,
                f"this token already started {rule.max_runs} run(s), the most {rule.label} "
                "allows (max_runs)",
                rule.label,
                claims,
            )
        return Decision(200, f"allowed by {rule.label}", rule.label, claims, number)

    def release(self, decision: Decision) -> None:
        """Airflow refused to create the run an allow was for: give the run back."""
        if decision.allowed and decision.claims.get("jti"):
            self.replay.release(decision.claims["jti"])

    def record(
        self,
        decision: Decision,
        dag_id: str,
        *,
        outcome: str | None = None,
        run_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """The audit event and the metric of one decision (``outcome`` overrides allowed /
        denied, e.g. ``failed`` when Airflow refused an allowed trigger)."""
        word = outcome or ("allowed" if decision.allowed else "denied")
        if self.audit is not None:
            self.audit.event(
                AUDIT_NAME,
                "trigger",
                word,
                dag_id=dag_id,
                status=decision.status,
                reason=error or decision.reason,
                rule=decision.rule,
                run_id=run_id,
                **decision.identity,
            )
        if self.metric is not None:
            self.metric(
                f"rotator.identity.{word}",
                {"status": str(decision.status), "dag_id": dag_id},
            )
