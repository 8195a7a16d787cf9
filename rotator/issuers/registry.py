"""Builds the issuers and the sink a configuration needs, importing each only if used."""

from __future__ import annotations

import json
from typing import Any

from backends.store import Store
from rotator.config import Config
from rotator.errors import ConfigError, NotFound
from rotator.issuers import Issuer
from rotator.sinks import Sink
from rotator.spec import CredentialSpec


def login_reader(config: Config, store: Store) -> Any:
    """For ``airflow-token``: the username and password of its ``login_from`` credential, read
    from the store's current version (never from config)."""

    def login(spec: CredentialSpec) -> tuple[str, str]:
        source = config.credential(spec.login_from or "")
        try:
            raw = store.get_document(source.path)
        except NotFound:
            raise ConfigError(
                f"credential {spec.name!r} logs in with {source.name!r}, which has no current "
                f"value yet: rotate {source.name!r} first"
            ) from None
        doc = json.loads(raw) if isinstance(raw, str) else raw
        return str(doc["login"]), str(doc["password"])

    return login


def build_issuers(config: Config, store: Store) -> dict[str, Issuer]:
    types = {spec.type for spec in config.credentials}
    issuers: dict[str, Issuer] = {}
    if "teamcity-token" in types:
        from rotator.issuers.teamcity import TeamCityTokenIssuer

        issuers["teamcity-token"] = TeamCityTokenIssuer(config.teamcity)  # type: ignore[arg-type]
    if "airflow-password" in types:
        from rotator.issuers.airflow import AirflowPasswordIssuer

        issuers["airflow-password"] = AirflowPasswordIssuer(config.airflow)  # type: ignore[arg-type]
    if "airflow-token" in types:
        from rotator.issuers.airflow import AirflowTokenIssuer

        issuers["airflow-token"] = AirflowTokenIssuer(
            config.airflow,  # type: ignore[arg-type]
            login_reader(config, store),
        )
    return issuers


def build_sink(config: Config) -> Sink | None:
    if config.teamcity is None or not any(spec.push for spec in config.credentials):
        return None
    from rotator.sinks.teamcity_parameters import TeamCityParameterSink

    return TeamCityParameterSink(config.teamcity)
