"""TeamCity access tokens: the credential Airflow uses to poll builds (type ``teamcity-token``).

Minted for ``spec.user`` with Rotator's own admin token, named ``rotator-<credential>-<rotation
id>``, expiring after ``spec.lifetime`` and restricted to ``spec.permissions`` (least privilege).
Stored as the Airflow ``http`` connection the design specifies: host = TeamCity URL, login =
the user, password = the token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from rotator.errors import RotatorError
from rotator.issuers import ForeignCredential, Issued, Secret, name_prefix, owns, rotator_name
from rotator.spec import CredentialSpec, TeamCitySettings
from rotator.targets.teamcity import TeamCityClient, bootstrap_token


class TeamCityTokenIssuer:
    type: ClassVar[str] = "teamcity-token"

    def __init__(self, settings: TeamCitySettings, client: TeamCityClient | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> TeamCityClient:
        """Built on first use: reading the bootstrap token is deferred until it is needed."""
        if self._client is None:
            self._client = TeamCityClient.from_settings(self.settings)
        return self._client

    def check_ready(self, spec: CredentialSpec) -> None:
        self._user(spec)
        bootstrap_token(self.settings)

    def _user(self, spec: CredentialSpec) -> str:
        if not spec.user:
            raise RotatorError(f"credential {spec.name!r} has no TeamCity user")
        return spec.user

    def target_name(self, spec: CredentialSpec, rotation_id: str) -> str:
        return rotator_name(spec, rotation_id)

    def mint(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        now = datetime.now(UTC)
        expires = now + spec.lifetime if spec.lifetime else None
        created = self.client.create_token(
            self._user(spec), self.target_name(spec, rotation_id), expires, spec.permissions
        )
        value = {
            "conn_type": "http",
            "host": self.settings.url,
            "login": self._user(spec),
            "password": created.value,
        }
        return Secret(
            value=value,
            target_name=created.name,
            issued=created.created or now,
            expires=created.expires,
        )

    def verify(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        """``GET /app/rest/server`` with the new token; a 401 raises ``TargetAuthError``."""
        probe = TeamCityClient.from_settings(self.settings, token=str(value["password"]))
        try:
            probe.server()
        finally:
            probe.http.close()

    def revoke(self, spec: CredentialSpec, target_name: str) -> None:
        if not owns(spec, target_name):
            raise ForeignCredential(
                f"refusing to revoke TeamCity token {target_name!r} of {spec.user}: Rotator "
                f"only revokes tokens it minted for {spec.name!r} "
                f"(named {name_prefix(spec)}<rotation id>)"
            )
        self.client.delete_token(self._user(spec), target_name)

    def list_issued(self, spec: CredentialSpec) -> list[Issued]:
        return [
            Issued(t.name, t.created, t.expires)
            for t in self.client.list_tokens(self._user(spec))
            if owns(spec, t.name)
        ]
