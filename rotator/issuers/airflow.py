"""Airflow credentials, through the FAB auth manager's API.

``airflow-password`` (``AirflowPasswordIssuer``): a service account's password. The new value
is generated here (``prepare``), staged in the store, and only then set at Airflow (``apply``),
so a crash can never leave Airflow holding a password the store does not have. The old password
stops working the moment the new one is set: a grace period cannot apply to a password (tokens
minted with the old one keep working until their own expiry, an Airflow fact). A password is
never dropped while Airflow may hold it: if the new one fails verification after ``apply``, the
engine keeps it staged and the next run proves which value Airflow holds (``apply`` again, then
verify) instead of guessing.

``airflow-token`` (``AirflowTokenIssuer``): a JWT from ``POST /auth/token``, logged in with the
current password of its ``login_from`` credential, for TeamCity to call Airflow with. Its expiry
is the token's own ``exp``; the engine renews it well before. Airflow 3.3 revokes a JWT only when
it is presented to ``/api/v2/auth/logout``, and Rotator does not keep old tokens around to do
that: a replaced token lapses at its ``exp`` (keep ``[api_auth] jwt_expiration_time`` short).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from rotator.errors import ConfigError, RotatorError
from rotator.issuers import Issued, Secret
from rotator.spec import AirflowSettings, CredentialSpec
from rotator.targets.airflow_api import AirflowApi, claim_time, jwt_claims

MIN_PASSWORD_LENGTH = 16
PASSWORD_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits + "-_.~"


def generate_password() -> str:
    while True:
        candidate = "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))
        if check_password(candidate, raise_error=False):
            return candidate


def check_password(password: object, *, raise_error: bool = True) -> bool:
    """Refuse empty and weak values before any request: the FAB API accepts an empty password
    (the account then cannot log in at all)."""
    ok = (
        isinstance(password, str)
        and len(password) >= MIN_PASSWORD_LENGTH
        and sum(
            any(c in group for c in password)
            for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
        )
        >= 3
    )
    if not ok and raise_error:
        raise ConfigError(
            f"refusing to set a weak Airflow password: at least {MIN_PASSWORD_LENGTH} characters "
            "with lower case, upper case and digits"
        )
    return ok


def _user(spec: CredentialSpec) -> str:
    if not spec.user:
        raise RotatorError(f"credential {spec.name!r} has no Airflow user")
    return spec.user


class AirflowPasswordIssuer:
    type: ClassVar[str] = "airflow-password"

    def __init__(self, settings: AirflowSettings, api: AirflowApi | None = None) -> None:
        self.settings = settings
        self.api = api or AirflowApi(settings)

    def target_name(self, spec: CredentialSpec, rotation_id: str) -> None:
        return None  # a password has no name at the target

    def check_ready(self, spec: CredentialSpec) -> None:
        _user(spec)
        self.api.admin_login()

    def _value(self, spec: CredentialSpec, password: str) -> dict[str, Any]:
        return {
            "conn_type": "http",
            "host": self.settings.url,
            "login": _user(spec),
            "password": password,
        }

    def prepare(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        """A new value, with no side effect at the target (the engine stages it first)."""
        return Secret(self._value(spec, generate_password()), None, datetime.now(UTC))

    def apply(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        password = value.get("password")
        check_password(password)
        self.api.set_password(_user(spec), str(password))

    restore = apply  # rolling back: the stored value is applied again

    def mint(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        secret = self.prepare(spec, rotation_id)
        self.apply(spec, secret.value)
        return secret

    def verify(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        self.api.token(str(value["login"]), str(value["password"]))

    def revoke(self, spec: CredentialSpec, target_name: str) -> None:
        """Nothing to revoke: setting the new password already replaced the old one."""

    def list_issued(self, spec: CredentialSpec) -> list[Issued]:
        """A password has no name at the target; logging in as admin here proves, before the
        engine writes its intent, that the admin login is accepted."""
        self.api.admin_token()
        return []


class AirflowTokenIssuer:
    type: ClassVar[str] = "airflow-token"

    def __init__(
        self,
        settings: AirflowSettings,
        login: Callable[[CredentialSpec], tuple[str, str]],
        api: AirflowApi | None = None,
    ) -> None:
        self.settings = settings
        self.login = login
        self.api = api or AirflowApi(settings)

    def target_name(self, spec: CredentialSpec, rotation_id: str) -> None:
        return None

    def check_ready(self, spec: CredentialSpec) -> None:
        self.login(spec)

    def mint(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        user, password = self.login(spec)
        token = self.api.token(
            user, password, who=f"the password of {user!r} (from {spec.login_from})"
        )
        claims = jwt_claims(token)
        return Secret(
            value={
                "conn_type": "http",
                "host": self.settings.url,
                "login": user,
                "password": token,
            },
            target_name=None,
            issued=claim_time(claims, "iat") or datetime.now(UTC),
            expires=claim_time(claims, "exp"),
        )

    def verify(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        self.api.check_token(str(value["password"]))

    def revoke(self, spec: CredentialSpec, target_name: str) -> None:
        """A replaced JWT lapses at its ``exp`` (see the module docstring)."""

    def list_issued(self, spec: CredentialSpec) -> list[Issued]:
        return []
