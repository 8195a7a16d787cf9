"""Airflow asset events after a rotation: "the TeamCity token changed" as something a DAG can be
scheduled on.

A credential with ``announce = true`` and a ``conn_id`` is announced after each successful
rotation as an event of ``Asset("rotator://<conn_id>")`` through Airflow 3.3's public API
(``GET /api/v2/assets`` to find the asset's id by its URI, ``POST /api/v2/assets/events``),
logged in with the ``[airflow]`` admin login like the users API. A DAG with
``schedule=[Asset("rotator://teamcity_default")]`` then runs: it can restart a long-running
consumer or re-register a webhook.

The event's ``extra`` carries the credential's name, the rotation id and the store version,
never a value. An asset no DAG uses is unknown to Airflow (the dag-processor registers assets
when it parses DAGs), which is said plainly. A failure to announce is the caller's warning,
like a sink that could not be reached: the rotation stands.
"""

from __future__ import annotations

from typing import Any

from rotator.errors import TargetError
from rotator.spec import AirflowSettings, CredentialSpec
from rotator.targets.airflow_api import AirflowApi
from rotator.targets.http import BearerAuth

ASSETS = "/api/v2/assets"
EVENTS = "/api/v2/assets/events"


def asset_uri(conn_id: str) -> str:
    return f"rotator://{conn_id}"


class AssetUnknown(TargetError):
    """No DAG uses the asset, so Airflow does not know it."""


class Announcer:
    def __init__(self, settings: AirflowSettings, api: AirflowApi | None = None) -> None:
        self.api = api or AirflowApi(settings)

    def __repr__(self) -> str:
        return f"Announcer({self.api!r})"

    def asset_id(self, uri: str) -> int:
        """The id Airflow gave the asset with this URI."""
        http = self.api.http
        response = http.request(
            "GET",
            ASSETS,
            params={"uri_prefix_pattern": uri, "limit": "100"},
            auth=BearerAuth(self.api.admin_token()),
            retry=True,
        )
        data = http.json(response, "GET", ASSETS)
        assets = data.get("assets")
        if not isinstance(assets, list):
            raise http.malformed(response, "GET", ASSETS, "no 'assets' list")
        # Airflow normalizes the URI (``Asset("rotator://c").uri`` is ``rotator://c/``); the
        # asset's name keeps the text the DAG wrote.
        for asset in assets:
            if isinstance(asset, dict) and asset.get("uri") in (uri, uri + "/"):
                found = asset.get("id")
                if isinstance(found, int) and not isinstance(found, bool):
                    return found
                raise http.malformed(response, "GET", ASSETS, "an asset without an integer 'id'")
        raise AssetUnknown(
            f"Airflow knows no asset {uri}: no DAG is scheduled on Asset({uri!r}) yet (assets "
            "are registered when the dag-processor parses a DAG that uses them)"
        )

    def announce(self, spec: CredentialSpec, rotation_id: str | None, version: str | None) -> int:
        """Emit the asset event; returns the event's id."""
        assert spec.conn_id is not None, "config refuses announce without conn_id"
        uri = asset_uri(spec.conn_id)
        body: dict[str, Any] = {
            "asset_id": self.asset_id(uri),
            "extra": {"credential": spec.name, "rotation_id": rotation_id, "version": version},
        }
        http = self.api.http
        # Not retried: a lost answer may mean the event was recorded, and two events would run
        # the consumer DAG twice; one missed event is the warning the caller reports.
        response = http.request(
            "POST", EVENTS, json=body, auth=BearerAuth(self.api.admin_token()), retry=False
        )
        event_id = http.json(response, "POST", EVENTS).get("id")
        if not isinstance(event_id, int) or isinstance(event_id, bool):
            raise http.malformed(response, "POST", EVENTS, "no integer 'id' for the event")
        return event_id
