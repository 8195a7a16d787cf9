"""What ``airflow providers`` learns about Rotator through the ``apache_airflow_provider``
entry point. Airflow calls this in every process that lists providers, so it imports nothing."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "rotator",
        "name": "Rotator",
        "description": "Secrets backend over Vault/OpenBao, AWS Secrets Manager or Rotator's "
        "embedded store, with a shared cache that follows credential rotation.",
        "versions": ["0.1.0"],
        "secrets-backends": ["backends.airflow.RotatorSecretsBackend"],
    }
