"""The "TeamCity build" button on a task instance: the web URL of the build the task started
or waited on, which the operator and the sensor push to XCom under ``build_url``."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

XCOM_BUILD_ID = "build_id"
XCOM_BUILD_URL = "build_url"


class TeamCityBuildLink(BaseOperatorLink):
    name = "TeamCity build"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        url = XCom.get_value(ti_key=ti_key, key=XCOM_BUILD_URL)
        return str(url) if url else ""
