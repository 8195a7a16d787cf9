"""The Airflow backend's read of AWS Secrets Manager: ``GetSecretValue`` of ``AWSCURRENT``.

boto3 costs about 110 ms to import and a client about 25 ms more to build (it loads the
service's JSON models), paid by every Airflow task on its first lookup. The read is one
SigV4-signed ``POST`` with a JSON body, so this reader signs it itself (``hmac``/``hashlib``,
the algorithm AWS documents) and sends it with httpx, which Airflow has already imported.

Credentials come from the standard chain, as boto3 finds them: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``) are read straight from the environment,
where botocore's chain looks first; otherwise botocore's credential resolver finds them
(shared credentials or config profile, SSO, web identity, container or instance metadata),
imported only then (about 50 ms, still no client nor service model).

The endpoint is ``endpoint_url``, else ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` / ``AWS_ENDPOINT_URL``,
else ``https://secretsmanager.<region>.amazonaws.com`` (``.com.cn`` in China). Whatever this
reader does not model is left to boto3: ``open_reader`` returns the full ``AwsStore`` when no
region is known, when FIPS or dual-stack endpoints are asked for, for the isolated partitions,
and when the shared config file's profile sets anything beyond a region and credentials (an
``endpoint_url``, a ``ca_bundle``, retry settings...). Retries follow botocore's standard mode
(3 attempts, jittered backoff, on connection errors, 5xx and throttling).

Errors are those of ``AwsStore.get_document``: ``NotFound`` (ResourceNotFoundException),
``AccessDenied``, ``StoreUnavailable`` (unreachable, 5xx, throttled, an answer that is not
JSON), ``CorruptDocument`` (a binary secret), ``Conflict`` (a secret marked for deletion),
``StoreError`` otherwise. Messages name the secret and AWS's error code, never a credential.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import json
import os
import random
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.errors import (
    AccessDenied,
    Conflict,
    CorruptDocument,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.http_read import http_client

SERVICE = "secretsmanager"
TARGET = "secretsmanager.GetSecretValue"
MAX_ATTEMPTS = 3  # AwsStore's client: retries={"max_attempts": 3, "mode": "standard"}
BACKOFF = 1.0
"""Seconds: the n-th retry waits up to ``BACKOFF * 2**(n-1)`` (full jitter, botocore's base)."""
_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
}
_TRANSIENT_STATUS = {500, 502, 503, 504}
_STANDARD_REGION = re.compile(r"^(?:[a-z]{2}|us-gov)-[a-z]+-\d+$")
# Profile keys that change nothing but the region or where credentials come from (the
# credential resolver reads those itself). Any other key sends the read to boto3.
_PROFILE_KEYS_WE_MODEL = {
    "region",
    "output",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "role_arn",
    "source_profile",
    "credential_source",
    "external_id",
    "mfa_serial",
    "role_session_name",
    "duration_seconds",
    "web_identity_token_file",
    "credential_process",
    "sso_session",
    "sso_account_id",
    "sso_role_name",
    "sso_region",
    "sso_start_url",
    "sso_registration_scopes",
    "metadata_service_timeout",
    "metadata_service_num_attempts",
}

_resolver: Any = None
_resolver_lock = threading.Lock()


# -- configuration: what boto3 would use -------------------------------------------------------
def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _profile() -> dict[str, str] | None:
    """The shared config file's section for the active profile; ``None`` when there is none."""
    path = Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    if not path.is_file():
        return None
    name = os.environ.get("AWS_DEFAULT_PROFILE") or os.environ.get("AWS_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return {"unparsable": "yes"}  # let botocore say what is wrong with it
    section = "default" if name == "default" else f"profile {name}"
    if not parser.has_section(section):
        return None
    return dict(parser.items(section))


def _endpoint(region: str | None, endpoint_url: str | None) -> str | None:
    """The URL boto3 would call, or ``None`` if working it out needs botocore."""
    if endpoint_url:
        return endpoint_url
    if not _truthy("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        for name in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"):
            if os.environ.get(name):
                return os.environ[name]
    if _truthy("AWS_USE_FIPS_ENDPOINT") or _truthy("AWS_USE_DUALSTACK_ENDPOINT"):
        return None
    if region is None or not _STANDARD_REGION.match(region):
        return None  # no region (boto3 raises NoRegionError), or an isolated partition
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{SERVICE}.{region}.{suffix}"


def open_reader(
    region: str | None = None,
    endpoint_url: str | None = None,
    timeout: float = 10.0,
    connections_prefix: str | None = "airflow/connections",
    variables_prefix: str | None = "airflow/variables",
    config_prefix: str | None = "airflow/config",
    state_prefix: str = "rotator",
) -> Any:
    """A reader for ``[store] kind = "aws"`` options: ``AwsReader`` where it models what boto3
    would do, else the full ``AwsStore`` (same options, same ``get_document``)."""
    from backends.store import check_path

    check_path(state_prefix)
    profile = _profile()
    modelled = profile is None or set(profile) <= _PROFILE_KEYS_WE_MODEL
    resolved_region = (
        region or os.environ.get("AWS_DEFAULT_REGION") or (profile or {}).get("region")
    )
    url = _endpoint(resolved_region, endpoint_url) if modelled else None
    if url is None or resolved_region is None:
        from backends.aws import AwsStore

        return AwsStore(
            region=region,
            endpoint_url=endpoint_url,
            timeout=timeout,
            connections_prefix=connections_prefix,
            variables_prefix=variables_prefix,
            config_prefix=config_prefix,
            state_prefix=state_prefix,
        )
    return AwsReader(url, resolved_region, timeout)


# -- credentials ---------------------------------------------------------------------------------
def _credentials() -> tuple[str, str, str | None]:
    """``(access key, secret key, session token)`` from the standard chain, as boto3 finds them."""
    access = os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if access and secret:  # botocore's EnvProvider, first in its chain
        token = os.environ.get("AWS_SECURITY_TOKEN") or os.environ.get("AWS_SESSION_TOKEN")
        return access, secret, token or None
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            import botocore.session

            _resolver = botocore.session.Session().get_credentials() or False
        found = _resolver
    if not found:
        from botocore.exceptions import NoCredentialsError

        raise NoCredentialsError()
    frozen = found.get_frozen_credentials()  # refreshes expiring ones (roles, SSO, IMDS)
    return frozen.access_key, frozen.secret_key, frozen.token


# -- Signature Version 4 ---------------------------------------------------------------------
def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    url: str,
    region: str,
    body: bytes,
    headers: dict[str, str],
    credentials: tuple[str, str, str | None],
    now: datetime,
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Amz-Date``, the session token and ``Authorization`` for a
    ``POST`` of ``body`` to ``url`` (AWS Signature Version 4, service ``secretsmanager``)."""
    access, secret, token = credentials
    parts = urlsplit(url)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    signed = {**headers, "Host": parts.netloc, "X-Amz-Date": stamp}
    if token:
        signed["X-Amz-Security-Token"] = token
    canonical = {k.lower(): " ".join(str(v).split()) for k, v in signed.items()}
    names = ";".join(sorted(canonical))
    request = "\n".join(
        [
            "POST",
            parts.path or "/",
            parts.query,
            "".join(f"{k}:{canonical[k]}\n" for k in sorted(canonical)),
            names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret}".encode(), day)
    for part in (region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={names}, "
        f"Signature={signature}"
    )
    return signed


# -- the read ------------------------------------------------------------------------------------
def _code(body: Any, status: int) -> str:
    """AWS's error code, as botocore parses it from a JSON-protocol error."""
    code = str(body.get("__type") or status) if isinstance(body, dict) else str(status)
    return code.split(":", 1)[0].rsplit("#", 1)[-1]


class AwsReader:
    """Reads what consumers read at a secret name: the ``SecretString`` of ``AWSCURRENT``."""

    kind = "aws"

    def __init__(self, url: str, region: str, timeout: float) -> None:
        self.url, self.region, self.timeout = url, region, timeout

    def __repr__(self) -> str:
        return f"AwsReader(url={self.url!r}, region={self.region!r})"

    def get_document(self, path: str) -> str:
        """The ``SecretString`` at ``path`` as stored (JSON or a URI: the caller parses it)."""
        from backends.store import check_path

        check_path(path)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._once(path)
            except StoreError as exc:
                if attempt == MAX_ATTEMPTS or not getattr(exc, "retryable", False):
                    raise
            time.sleep(random.random() * BACKOFF * 2 ** (attempt - 1))  # noqa: S311 - jitter
        raise AssertionError("unreachable")

    def _once(self, path: str) -> str:
        import httpx

        try:
            credentials = _credentials()
        except Exception as exc:  # botocore's chain: NoCredentialsError, PartialCredentialsError
            raise StoreUnavailable(
                f"cannot reach AWS Secrets Manager for {path}: {type(exc).__name__}"
            ) from None
        body = json.dumps({"SecretId": path, "VersionStage": "AWSCURRENT"}).encode()
        headers = sign(
            self.url,
            self.region,
            body,
            {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET},
            credentials,
            datetime.now(UTC),
        )
        verify: bool | str = os.environ.get("AWS_CA_BUNDLE") or True
        client = http_client(self.url, verify, self.timeout)
        try:
            response = client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _retryable(
                StoreUnavailable(
                    f"cannot reach AWS Secrets Manager for {path}: {type(exc).__name__}"
                )
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        status = response.status_code
        if status == 200 and isinstance(answer, dict):
            text = answer.get("SecretString")
            if text is None:
                raise CorruptDocument(f"{path} holds binary data, not a string")
            return str(text)
        if answer is None and status < 500:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise StoreUnavailable(
                f"AWS Secrets Manager at {self.url} answered {status} with {kind}, not AWS's "
                f"JSON, for {path} (a proxy or a wrong endpoint_url?)"
            )
        raise self._error(path, _code(answer, status), status)

    @staticmethod
    def _error(path: str, code: str, status: int) -> StoreError:
        """The same outcome ``AwsStore`` gives for a ``ClientError`` with ``code``."""
        if code == "ResourceNotFoundException":
            return NotFound(f"nothing stored at {path}")
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            return AccessDenied(f"AWS refused access to {path} ({code})")
        if code in ("InvalidParameterException", "InvalidRequestException"):
            return Conflict(f"{path} changed under us ({code})")
        error: StoreError
        if status >= 500 or code in ("InternalServiceError", "ThrottlingException"):
            error = StoreUnavailable(f"AWS failed on {path} ({code or status})")
        else:
            error = StoreError(f"AWS error on {path}: {code}")
        # botocore's standard mode retries these before it raises
        return _retryable(error) if status in _TRANSIENT_STATUS or code in _THROTTLING else error

    def close(self) -> None:
        """Clients are shared per process; nothing to release per reader."""


def _retryable(error: StoreError) -> StoreError:
    error.retryable = True  # type: ignore[attr-defined]
    return error
