"""What ``airflow providers`` learns about Rotator through the ``apache_airflow_provider``
entry point. Airflow calls this in every process that lists providers, so it imports nothing."""

from __future__ import annotations

from typing import Any

_TC = "rotator.provider.teamcity"
_TEAMCITY: dict[str, Any] = {
    "integrations": [{"integration-name": "TeamCity", "tags": ["software"]}],
    "hooks": [{"integration-name": "TeamCity", "python-modules": [f"{_TC}.hooks"]}],
    "operators": [{"integration-name": "TeamCity", "python-modules": [f"{_TC}.operators"]}],
    "sensors": [{"integration-name": "TeamCity", "python-modules": [f"{_TC}.sensors"]}],
    "triggers": [{"integration-name": "TeamCity", "python-modules": [f"{_TC}.triggers"]}],
    "extra-links": [f"{_TC}.links.TeamCityBuildLink"],
    "connection-types": [
        {
            "hook-class-name": f"{_TC}.hooks.TeamCityHook",
            "hook-name": "TeamCity",
            "connection-type": "teamcity",
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "port"],
                "relabeling": {"host": "Server URL", "login": "User", "password": "Access token"},
                "placeholders": {
                    "host": "https://teamcity.example.com",
                    "login": "airflow-bot (informational)",
                    "password": "kept fresh by Rotator",
                },
            },
            "conn-fields": {
                "verify": {
                    "label": "Verify TLS",
                    "description": "Check the server's certificate (default true).",
                    "schema": {"type": ["boolean", "null"], "default": True},
                },
                "ca_bundle": {
                    "label": "CA bundle",
                    "description": "Path of a CA file to verify the server with.",
                    "schema": {"type": ["string", "null"]},
                },
                "timeout": {
                    "label": "Timeout (s)",
                    "description": "Seconds per request (default 30).",
                    "schema": {"type": ["number", "null"], "default": 30},
                },
            },
        }
    ],
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "rotator",
        "name": "Rotator",
        "description": "Secrets backend over Vault/OpenBao, AWS Secrets Manager or Rotator's "
        "embedded store, with a shared cache that follows credential rotation.",
        "versions": ["0.1.0"],
        "secrets-backends": ["backends.airflow.RotatorSecretsBackend"],
        # TeamCity for DAGs (rotator/provider/teamcity): hook, operator, sensor, trigger
        **_TEAMCITY,
    }
