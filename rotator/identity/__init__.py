"""Identity-aware DAG triggering: a TeamCity build proves who it is with its own OIDC token
(JetBrains' ``teamcity-oidc-jwt`` plugin), and ``[[identity.allow]]`` in rotator.toml says
what it may trigger. No credential is stored in TeamCity for the TeamCity -> Airflow direction.

Plain Python, no FastAPI or Airflow imports, so ``rotator identity check`` explains decisions
offline and the Airflow plugin (``rotator.airflow_plugin.identity``) stays a thin HTTP layer.

Modules: ``settings`` (``[identity]`` of rotator.toml), ``policy`` (rules, deny by default),
``jwks`` (the issuer's keys, cached, fail closed), ``verify`` (PyJWT with pinned issuer,
audience and algorithms), ``replay`` (runs per token), ``gate`` (one decision, audited).
"""

from rotator.identity.gate import Decision, Gate
from rotator.identity.policy import Policy, Rule
from rotator.identity.settings import IdentitySettings

__all__ = ["Decision", "Gate", "IdentitySettings", "Policy", "Rule"]
