"""AWS Secrets Manager (through boto3), stages as native staging labels.

``current``/``previous``/``pending`` are ``AWSCURRENT``/``AWSPREVIOUS``/``AWSPENDING`` on the
secret named by the path, so the official ``SecretsManagerBackend`` (which reads AWSCURRENT) and
AWS's own rotation tooling see the same thing. Secrets Manager has no conditional write; two
things stand in for one:

- moving a label with ``RemoveFromVersionId`` fails unless the label is on that version: the
  compare-and-set of a secret others may write too (promotion, ``put_current``);
- a ``ClientRequestToken`` AWS refuses to reuse for other data: the compare-and-set, in one
  request, of the documents only Rotator writes, whose next version id is derived from the one
  they replace (``_chained_put``): ``<state_prefix>/locks/<key>``, the lease and, inside it,
  the journal and the stage state of the bound paths (``backends.lease``).

``put_pending`` uses a ``ClientRequestToken`` derived from the rotation id, so a retried call
is recognised. A promotion leaves AWSPENDING on the promoted version, as AWS's own rotations
may (``_stages``). Reads always name a ``VersionStage``: moto 5.x returns a stale value for a
plain ``get_secret_value`` after a label move (``_settle_current``).

Differences callers can see: version ids are UUIDs; a rollback moves labels (no new version);
AWS keeps ~100 versions and deprecates unlabelled ones on its own schedule.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from backends.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    CorruptDocument,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.lease import CasLeases, LeaseRecord, utcnow
from backends.store import (
    STAGES,
    Version,
    check_document,
    check_path,
    expect_current,
    issued_at,
)

AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
"""Where AWS's own Secrets Manager endpoints live (public, FIPS, VPC endpoint, China)."""
LABELS = {"current": "AWSCURRENT", "previous": "AWSPREVIOUS", "pending": "AWSPENDING"}
STATE_MARKER = "rotator_state"
PENDING_MARKER = "rotator_pending"
CANDIDATE = "ROTATOR_CANDIDATE"
_NAMESPACE = uuid.UUID("6f1c1a3e-8f0e-4a57-9a7c-2b1d0e5c4f11")
_STATE_RETRIES = 5

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def _client(region: str | None, endpoint_url: str | None, timeout: float) -> Any:
    """One boto3 client per process and configuration (boto3 import costs ~0.25 s)."""
    key = (region, endpoint_url, timeout)
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
            )
            _clients[key] = boto3.session.Session().client(
                "secretsmanager", region_name=region, endpoint_url=endpoint_url, config=config
            )
        return _clients[key]


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn botocore errors into the store's outcomes, keeping the cause."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ResourceNotFoundException":
            raise NotFound(f"nothing stored at {what}") from exc
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            raise AccessDenied(f"AWS refused access to {what} ({code})") from exc
        if code == "ResourceExistsException":
            raise Conflict(f"{what} already exists") from exc
        if code in ("InvalidParameterException", "InvalidRequestException"):
            raise Conflict(f"{what} changed under us ({code})") from exc
        if status >= 500 or code in ("InternalServiceError", "ThrottlingException"):
            raise StoreUnavailable(f"AWS failed on {what} ({code or status})") from exc
        raise StoreError(f"AWS error on {what}: {code}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(
            f"cannot reach AWS Secrets Manager for {what}: {type(exc).__name__}"
        ) from exc


def _stages(labels: list[str]) -> frozenset[str]:
    """A version's stages from its labels. AWSPENDING left on the AWSCURRENT version is a
    finished rotation (AWS documents it so for its own rotations: a later one may start), not
    a pending value: promotion moves AWSCURRENT and leaves AWSPENDING where it is, one billed
    request fewer, and the next staged value takes the label along."""
    stages = {s for s, label in LABELS.items() if label in labels}
    return frozenset(stages - {"pending"} if "current" in stages else stages)


def _pending_holder(labels: Mapping[str, list[str]]) -> str | None:
    """The version holding a pending value (see ``_stages``), or ``None``."""
    return next(
        (v for v, ls in labels.items() if "AWSPENDING" in ls and "AWSCURRENT" not in ls), None
    )


def _token(path: str, rotation_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{path}\n{rotation_id}"))


class AwsStore(CasLeases[str]):
    """``[store] kind = "aws"``: ``region``, ``endpoint_url`` (optional), ``timeout``, prefixes.
    Credentials come from the standard AWS chain (env, profile, IRSA, instance role)."""

    kind: ClassVar[str] = "aws"

    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        connections_prefix: str | None = "airflow/connections",
        variables_prefix: str | None = "airflow/variables",
        config_prefix: str | None = "airflow/config",
        state_prefix: str = "rotator",
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        self.connections_prefix = connections_prefix
        self.variables_prefix = variables_prefix
        self.config_prefix = config_prefix
        self.state_prefix = check_path(state_prefix)
        self._staged: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        """(path, rotation id) -> what ``put_pending`` staged for a bound path (``promote``)."""
        self._seen_current: dict[str, str] = {}
        """path -> the version this object last read or made AWSCURRENT (bound paths): a
        rotation reads current, then stages; what it just read spares two requests."""

    def __repr__(self) -> str:
        return f"AwsStore(region={self.region!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def emulator(self) -> bool:
        """The endpoint is not AWS's own (moto, LocalStack): the client's resolved endpoint,
        so ``AWS_ENDPOINT_URL`` counts as much as ``endpoint_url``."""
        host = urlsplit(str(self._sm.meta.endpoint_url)).hostname or ""
        return not host.endswith(AWS_DOMAINS)

    @property
    def _sm(self) -> Any:
        return _client(self.region, self.endpoint_url, self.timeout)

    # -- plumbing --------------------------------------------------------------------------
    def _state_name(self, kind: str, name: str) -> str:
        return f"{self.state_prefix}/{kind}/{check_path(name)}"

    def _labels(self, name: str) -> dict[str, list[str]] | None:
        """VersionId -> labels, or None when the secret does not exist."""
        try:
            with _translated(name):
                desc = self._sm.describe_secret(SecretId=name)
        except NotFound:
            return None
        return dict(desc.get("VersionIdsToStages") or {})

    @staticmethod
    def _holder(labels: Mapping[str, list[str]], label: str) -> str | None:
        return next((v for v, ls in labels.items() if label in ls), None)

    def _get(
        self, name: str, *, stage: str | None = None, version_id: str | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"SecretId": name}
        if version_id:
            kwargs["VersionId"] = version_id
        else:
            kwargs["VersionStage"] = stage or "AWSCURRENT"
        with _translated(name):
            return self._sm.get_secret_value(**kwargs)

    @staticmethod
    def _parse(name: str, response: Mapping[str, Any]) -> dict[str, Any]:
        text = response.get("SecretString")
        try:
            value = json.loads(text) if text is not None else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise CorruptDocument(f"{name} does not hold a JSON object; left untouched")
        return value

    def _cas_put(
        self, name: str, text: str, expected: str | None, version_id: str | None = None
    ) -> str:
        """Write ``text`` as the new AWSCURRENT of ``name`` if AWSCURRENT is on ``expected``
        (``None``: the secret or its AWSCURRENT must not exist). ``Conflict`` otherwise."""
        new = version_id or str(uuid.uuid4())
        if expected is None and self._labels(name) is None:
            with _translated(name):
                self._sm.create_secret(Name=name, SecretString=text, ClientRequestToken=new)
            return new
        with _translated(name):
            self._sm.put_secret_value(
                SecretId=name, SecretString=text, ClientRequestToken=new, VersionStages=[CANDIDATE]
            )
        self._move_current(name, new, expected)
        # CANDIDATE stays on the new version: the next put moves it (a label is on one version
        # at most), so taking it off would be one more billed write per document write.
        return new

    def _move_current(self, name: str, to: str, expected: str | None) -> None:
        """Move AWSCURRENT to ``to`` only if it is on ``expected`` (``None``: on no version):
        AWS refuses the move otherwise, which makes this the store's compare-and-set."""
        move: dict[str, Any] = {
            "SecretId": name,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": to,
        }
        if expected is not None:
            move["RemoveFromVersionId"] = expected
        with _translated(name):
            self._sm.update_secret_version_stage(**move)

    def _settle_current(self, name: str, version_id: str, text: str | None = None) -> None:
        """On an emulator, re-put the promoted version with its own id and identical data,
        while it still carries AWSPENDING.

        moto 5.x keeps answering a plain ``get_secret_value`` (no VersionStage: how the
        official Airflow backend reads) with the old version after a label move, and re-writes
        a version that still has AWSPENDING: this makes it follow the label, as AWS does. On
        AWS's own endpoints the call is documented as a no-op ("the operation succeeds but
        does nothing") that is still billed, so it is skipped there (``emulator``). A
        rollback or ``put_current`` on an existing secret has no such hook, so on moto the
        official backend keeps reading the old value after those (Rotator's reads name the
        stage).
        """
        if not self.emulator:
            return
        with _translated(name):
            if text is None:  # ``text``: the version's exact string, when the caller has it
                text = self._sm.get_secret_value(SecretId=name, VersionId=version_id)[
                    "SecretString"
                ]
            self._sm.put_secret_value(
                SecretId=name,
                SecretString=text,
                ClientRequestToken=version_id,
                VersionStages=["AWSCURRENT"],
            )

    def _unlabel(self, name: str, label: str, version_id: str) -> None:
        with _translated(name):
            self._sm.update_secret_version_stage(
                SecretId=name, VersionStage=label, RemoveFromVersionId=version_id
            )

    def _read_state(self, path: str) -> tuple[dict[str, Any], str | None]:
        if self._bound_key(path) is not None:
            state = self.bound_state_copy(path, STATE_MARKER)
            if state is not None:
                return state, None
            # Nothing recorded in the lock yet: an older Rotator's state secret, if any.
        name = self._state_name("state", path)
        try:
            response = self._get(name)
        except NotFound:
            return {STATE_MARKER: 1, "meta": {}}, None
        state = self._parse(name, response)
        if state.get(STATE_MARKER) != 1 or not isinstance(state.get("meta"), dict):
            raise CorruptDocument(f"{name} is not a Rotator state document; left untouched")
        return state, response["VersionId"]

    def _record_meta(
        self, path: str, version_id: str, meta: Mapping[str, Any], live: set[str]
    ) -> None:
        if self._bound_key(path) is not None:  # kept in the lock: rides on its next write
            state, _ = self._read_state(path)
            state["meta"][version_id] = dict(meta)
            state["meta"] = {k: v for k, v in state["meta"].items() if k in live | {version_id}}
            self.record_state(path, state)
            return
        name = self._state_name("state", path)
        for _ in range(_STATE_RETRIES):
            state, expected = self._read_state(path)
            state["meta"][version_id] = dict(meta)
            state["meta"] = {k: v for k, v in state["meta"].items() if k in live | {version_id}}
            try:
                self._cas_put(name, json.dumps(state), expected)
                return
            except Conflict:
                continue
        raise Conflict(f"state of {path!r} kept changing under us")

    def _version(
        self, path: str, version_id: str, labels: Mapping[str, list[str]], state: dict[str, Any]
    ) -> Version:
        response = self._get(path, version_id=version_id)
        return self._from_response(path, response, state, labels.get(version_id, []))

    def _from_response(
        self,
        path: str,
        response: Mapping[str, Any],
        state: dict[str, Any],
        labels: list[str] | None = None,
    ) -> Version:
        """A ``get_secret_value`` answer as a ``Version`` (its labels, unless given, from the
        answer: AWS returns the version's own)."""
        version_id = str(response["VersionId"])
        if labels is None:
            labels = list(response.get("VersionStages") or [])
        created = response.get("CreatedDate") or datetime.now(UTC)
        return Version(
            id=version_id,
            value=self._parse(path, response),
            stages=_stages(labels),
            created=created.astimezone(UTC),
            meta=dict(state["meta"].get(version_id, {})),
        )

    # -- documents -------------------------------------------------------------------------
    def get_document(self, path: str) -> str:
        response = self._get(check_path(path), stage="AWSCURRENT")
        text = response.get("SecretString")
        if text is None:
            raise CorruptDocument(f"{path} holds binary data, not a string")
        return text

    def read(self, path: str, stage: str = "current", *, value: bool = True) -> Version:
        check_path(path)
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        bound = self._bound_key(path) is not None
        if stage == "previous" and not value and bound:
            recorded = self._recorded_previous(path)
            if recorded is not None:
                return recorded
        if stage != "pending":
            # One request: the version holding the label, with its labels and value.
            try:
                response = self._get(path, stage=LABELS[stage])
            except NotFound:
                if stage == "current":
                    self._seen_current.pop(path, None)
                raise
            state, _ = self._read_state(path)
            if stage == "current" and bound:
                self._seen_current[path] = str(response["VersionId"])
            return self._from_response(path, response, state)
        labels = self._labels(path) or {}
        holder = _pending_holder(labels)
        if holder is None:
            return self._first_pending_version(path)
        state, _ = self._read_state(path)
        return self._version(path, holder, labels, state)

    def _recorded_previous(self, path: str) -> Version | None:
        """``previous`` without its value, from the state the last promotion recorded, if
        that promotion's version is the current this object just read (AWS moves AWSPREVIOUS
        to the version AWSCURRENT leaves, so the state then names it); else ``None``."""
        state, _ = self._read_state(path)
        current, previous = state.get("current"), state.get("previous")
        if not previous or current is None or self._seen_current.get(path) != current:
            return None
        meta = dict(state["meta"].get(previous, {}))
        return Version(previous, {}, frozenset({"previous"}), issued_at(meta), meta)

    def read_version(self, path: str, version_id: str) -> Version:
        check_path(path)
        labels = self._labels(path) or {}
        if version_id not in labels:
            raise NotFound(f"{path!r} has no version {version_id!r}")
        state, _ = self._read_state(path)
        return self._version(path, version_id, labels, state)

    def versions(self, path: str) -> list[Version]:
        check_path(path)
        try:
            with _translated(path):
                listing = self._sm.list_secret_version_ids(SecretId=path, IncludeDeprecated=False)
        except NotFound:
            return []
        labels = self._labels(path) or {}
        state, _ = self._read_state(path)
        found = []
        for entry in listing.get("Versions", []):
            if not entry.get("VersionStages"):
                continue
            with contextlib.suppress(NotFound, CorruptDocument):
                found.append(self._version(path, entry["VersionId"], labels, state))
        return sorted(found, key=lambda v: v.created, reverse=True)

    def put_current(
        self,
        path: str,
        value: dict[str, Any],
        *,
        expected: str | None,
        meta: Mapping[str, str] | None = None,
    ) -> Version:
        check_path(path)
        check_document(path, value)
        labels = self._labels(path) or {}
        expect_current(path, self._holder(labels, "AWSCURRENT"), expected)
        new = self._cas_put(path, json.dumps(value), expected)
        self._record_meta(path, new, meta or {}, {expected} if expected else set())
        self._record_labels(path, new, expected)
        return self.read_version(path, new)

    def put_pending(
        self,
        path: str,
        value: dict[str, Any],
        *,
        rotation_id: str,
        meta: Mapping[str, str] | None = None,
    ) -> Version:
        check_path(path)
        check_document(path, value)
        token = _token(path, rotation_id)
        full_meta = {**dict(meta or {}), "rotation_id": rotation_id}
        bound = self._bound_key(path) is not None
        current = self._seen_current.get(path) if bound else None
        if current is not None and (path, rotation_id) not in self._staged:
            # A current was just read, and this object never staged this rotation id: no
            # Describe first (the token is new unless another process staged the same id,
            # which AWS refuses with other data).
            try:
                self._put_pending_version(path, value, token)
            except NotFound:
                self._seen_current.pop(path, None)  # gone meanwhile: the long way tells
            else:
                self._record_meta(path, token, full_meta, self._live(path, current))
                return self._staged_version(path, rotation_id, value, full_meta)
        labels = self._labels(path)
        if labels is not None and token in labels:
            existing = self._parse(path, self._get(path, version_id=token))
            if existing != value:
                raise Conflict(f"{path!r}: rotation {rotation_id} already staged another value")
            return self.read_version(path, token)
        if labels is None or self._holder(labels, "AWSCURRENT") is None:
            return self._put_first_pending(path, value, rotation_id, full_meta)
        self._put_pending_version(path, value, token)
        live = {v for v, ls in labels.items() if {"AWSCURRENT", "AWSPREVIOUS"} & set(ls)}
        self._record_meta(path, token, full_meta, live)
        if not bound:
            return self.read_version(path, token)
        return self._staged_version(path, rotation_id, value, full_meta)

    def _put_pending_version(self, path: str, value: dict[str, Any], token: str) -> None:
        with _translated(path):
            self._sm.put_secret_value(
                SecretId=path,
                SecretString=json.dumps(value),
                ClientRequestToken=token,
                VersionStages=["AWSPENDING"],
            )

    def _staged_version(
        self, path: str, rotation_id: str, value: dict[str, Any], meta: dict[str, Any]
    ) -> Version:
        """What was just staged, without reading it back (a rotation id stages one value),
        remembered for ``promote``."""
        self._staged[(path, rotation_id)] = (value, meta)
        return Version(_token(path, rotation_id), value, frozenset({"pending"}), utcnow(), meta)

    def _live(self, path: str, current: str) -> set[str]:
        """The versions whose metadata staging keeps: current and previous, as the state
        names them while it names this current (``_recorded_previous``); else every
        version the state has metadata for (pruned at the next stage that knows)."""
        state, _ = self._read_state(path)
        if state.get("current") == current and state.get("previous"):
            return {current, state["previous"]}
        return {current, *state["meta"]}

    def _record_labels(self, path: str, current: str, previous: str | None) -> None:
        """For a bound path, which versions Rotator just left AWSCURRENT and AWSPREVIOUS
        (rides on the lease's next write: no request of its own while the lease is held)."""
        if self._bound_key(path) is None:
            return
        state, _ = self._read_state(path)
        state["current"], state["previous"] = current, previous
        self.record_state(path, state)
        self._seen_current[path] = current

    def _put_first_pending(
        self, path: str, value: dict[str, Any], rotation_id: str, meta: dict[str, Any]
    ) -> Version:
        """AWS makes a secret's first version AWSCURRENT whatever labels we ask for, so a
        credential's very first pending value waits beside the secret until promotion."""
        found = self._first_pending(path)
        if found is not None and found["rotation_id"] == rotation_id:
            if found["value"] != value:
                raise Conflict(f"{path!r}: rotation {rotation_id} already staged another value")
        else:
            document = {PENDING_MARKER: 1, "rotation_id": rotation_id, "value": value, "meta": meta}
            name = self._state_name("pending", path)
            with _translated(name):
                if self._labels(name) is None:
                    self._sm.create_secret(Name=name, SecretString=json.dumps(document))
                else:
                    self._sm.put_secret_value(SecretId=name, SecretString=json.dumps(document))
        if self._bound_key(path) is not None:
            # As a labelled stage does: the metadata rides on the rotation's next lock write,
            # so it is in the store before promotion drops this document (a run that dies
            # right after promoting leaves the journal at "staged", and the next run knows
            # the new current by it).
            self._record_meta(path, _token(path, rotation_id), meta, set())
        return self._first_pending_version(path)

    def _first_pending(self, path: str) -> dict[str, Any] | None:
        name = self._state_name("pending", path)
        try:
            document = self._parse(name, self._get(name))
        except NotFound:
            return None
        if document.get(PENDING_MARKER) != 1:
            return None  # discarded (or never ours): nothing pending
        return document

    def _first_pending_version(self, path: str) -> Version:
        document = self._first_pending(path)
        if document is None:
            raise NotFound(f"{path!r} has no pending version")
        return Version(
            id=_token(path, document["rotation_id"]),
            value=document["value"],
            stages=frozenset({"pending"}),
            created=utcnow(),
            meta=dict(document.get("meta") or {}),
        )

    def _drop_first_pending(self, path: str) -> None:
        name = self._state_name("pending", path)
        if self._first_pending(path) is not None:
            with _translated(name):
                self._sm.put_secret_value(SecretId=name, SecretString=json.dumps({"cleared": True}))

    def discard_pending(self, path: str, *, rotation_id: str | None = None) -> None:
        check_path(path)
        for staged in [k for k in list(self._staged) if k[0] == path]:
            if rotation_id in (None, staged[1]):
                self._staged.pop(staged, None)
        first = self._first_pending(path)
        if first is not None and rotation_id in (None, first["rotation_id"]):
            self._drop_first_pending(path)
        holder = _pending_holder(self._labels(path) or {})
        if holder is None or (rotation_id is not None and holder != _token(path, rotation_id)):
            return
        with contextlib.suppress(Conflict):
            self._unlabel(path, "AWSPENDING", holder)

    def promote(self, path: str, *, rotation_id: str, expected: str | None) -> Version:
        check_path(path)
        token = _token(path, rotation_id)
        staged = self._staged.pop((path, rotation_id), None)
        if staged is not None and expected is not None:
            # The label move is the compare-and-set (refused unless AWSCURRENT is on
            # ``expected``); on any refusal, the reads below tell what happened.
            # AWSPENDING stays on the promoted version (``_stages``).
            with contextlib.suppress(Conflict, NotFound):
                self._move_current(path, token, expected)
                self._settle_current(path, token, json.dumps(staged[0]))
                self._record_labels(path, token, expected)
                return Version(token, staged[0], frozenset({"current"}), utcnow(), staged[1])
        labels = self._labels(path) or {}
        current = self._holder(labels, "AWSCURRENT")
        if current == token:
            return self.read_version(path, token)
        if current is None:
            first = self._first_pending(path)
            if first is None or first["rotation_id"] != rotation_id:
                raise Conflict(f"{path!r}: rotation {rotation_id} has no pending version")
            expect_current(path, current, expected)
            self._cas_put(path, json.dumps(first["value"]), None, version_id=token)
            self._record_meta(path, token, first.get("meta") or {}, set())
            self._record_labels(path, token, None)
            self._drop_first_pending(path)
            return self.read_version(path, token)
        if "AWSPENDING" not in labels.get(token, []):
            raise Conflict(f"{path!r}: rotation {rotation_id} has no pending version")
        expect_current(path, current, expected)
        self._move_current(path, token, expected)
        self._settle_current(path, token)
        self._record_labels(path, token, current)
        return self.read_version(path, token)

    def rollback(self, path: str, *, expected: str) -> Version:
        check_path(path)
        labels = self._labels(path) or {}
        expect_current(path, self._holder(labels, "AWSCURRENT"), expected)
        previous = self._holder(labels, "AWSPREVIOUS")
        if previous is None:
            raise NotFound(f"{path!r} has no previous version to roll back to")
        with _translated(path):
            self._sm.update_secret_version_stage(
                SecretId=path,
                VersionStage="AWSCURRENT",
                MoveToVersionId=previous,
                RemoveFromVersionId=expected,
            )
        self._record_labels(path, previous, expected)
        return self.read_version(path, previous)

    def delete(self, path: str) -> None:
        check_path(path)
        for name in (path, self._state_name("state", path), self._state_name("pending", path)):
            with contextlib.suppress(NotFound), _translated(name):
                self._sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        self._seen_current.pop(path, None)
        if self._bound_key(path) is not None:
            self.record_state(path, None)

    # -- lease lock ------------------------------------------------------------------------
    def _lease(self, key: str) -> tuple[LeaseRecord | None, str | None]:
        name = self._state_name("locks", key)
        try:
            response = self._get(name)
        except NotFound:
            return None, None
        return LeaseRecord.from_data(key, response.get("SecretString")), response["VersionId"]

    def _swap_lease(self, key: str, record: LeaseRecord, expected: str | None) -> str:
        return self._chained_put(self._state_name("locks", key), record.to_json(), expected)

    def _chained_put(self, name: str, text: str, expected: str | None) -> str:
        """Compare-and-set in one request, for documents only Rotator writes (lock records).

        The new version's id is derived from the version it replaces, and AWS refuses a
        ``ClientRequestToken`` already used for other data: two writers that both read
        ``expected`` ask for the same id, so only the first lands (``Conflict`` for the
        other), and a writer that read an older version asks for an id its successor already
        took. A retry of a write that landed (same id, same data) succeeds without doing
        anything. Only as good as every writer keeping the chain: a secret that a person, an
        older Rotator or AWS tooling also writes keeps the two-request ``_cas_put``. AWS
        purges deprecated versions beyond 100 once they are a day old, so only a writer that
        read the document a day and a hundred writes ago could slip through; a lease lives
        seconds (MAX_TTL 300 s)."""
        new = str(uuid.uuid5(_NAMESPACE, f"{name}\n{expected or ''}"))
        with _translated(name):
            if expected is None:  # AWS refuses to create a name that exists
                self._sm.create_secret(Name=name, SecretString=text, ClientRequestToken=new)
            else:  # AWSCURRENT moves to the new version (AWSPREVIOUS to the old)
                self._sm.put_secret_value(SecretId=name, SecretString=text, ClientRequestToken=new)
        return new

    def close(self) -> None:
        """The boto3 client is shared per process; nothing to release per store."""

    LIST_PAGE = 100
    """ListSecrets page size (AWS's maximum); a test lowers it to make moto page."""

    def lock_names(self) -> list[str]:
        """ListSecrets filtered by the name prefix ``<state_prefix>/locks/``, every page. The
        filter only narrows what AWS sends (AWS matches ``name`` filters loosely): the exact
        prefix is checked here, so ``rotator`` never lists the locks of ``rotator-b``."""
        prefix = f"{self.state_prefix}/locks/"
        request: dict[str, Any] = {
            "Filters": [{"Key": "name", "Values": [prefix]}],
            "MaxResults": self.LIST_PAGE,
        }
        names: set[str] = set()
        while True:
            with _translated(prefix):
                page = self._sm.list_secrets(**request)
            for entry in page.get("SecretList") or []:
                key = str(entry.get("Name", ""))
                if key.startswith(prefix) and key[len(prefix) :] and "/" not in key[len(prefix) :]:
                    names.add(key[len(prefix) :])
            if not page.get("NextToken"):
                return sorted(names)
            request["NextToken"] = page["NextToken"]
