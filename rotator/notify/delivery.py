"""Sending notices through apprise, off the rotation's path.

Why a queue and one worker thread: a receiver that hangs or refuses must not delay a rotation,
let alone fail it. ``submit`` only enqueues; the worker tries each delivery ``attempts`` times
with exponential backoff, each attempt bounded by ``timeout`` seconds (apprise's own call
limit), so one notice costs at most ``attempts * timeout + backoff * (2**(attempts-1) - 1)``
seconds of the worker's time and none of the caller's. A one-shot command waits for the queue
with ``flush(bound)`` after it has printed its result; the daemon never waits.

A failed delivery is written to the audit trail (step ``notify``), counted through
``on_result`` (the metric ``rotator_notify_failures_total``) and dropped. Its text names the
target as ``notify[i]`` and the URL's scheme only: the URL itself is a secret.

The URL is read from ``url_env``/``url_file`` at each delivery (a rotated webhook is picked
up without a restart) and never kept longer than the call.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rotator.errors import ConfigError, RotatorError
from rotator.notify.message import Notice
from rotator.spec import NotifySpec

QUEUE_LIMIT = 1000
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]{0,24})://", re.IGNORECASE)

# apprise logs through the "apprise" logger; some plugins put the URL (its token) in debug
# lines. Without a handler of its own, Python's last-resort handler would print its warnings
# on our stderr; with this one they go wherever the host application routes "apprise".
logging.getLogger("apprise").addHandler(logging.NullHandler())


class NotifyError(RotatorError):
    """A notification could not be sent (never raised to a caller of ``submit``)."""


def scheme_of(url: str) -> str:
    """``json://`` for ``json://host/path``; a URL without a plain scheme is named by nothing
    (what precedes ``://`` could be the token itself)."""
    found = _SCHEME.match(url)
    return f"{found.group(1).lower()}://" if found else "a URL"


def resolve_url(target: NotifySpec) -> str:
    """The apprise URL of ``target``, read now from its variable or file."""
    if target.url_file:
        try:
            url = Path(target.url_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{target.where}: cannot read url_file {target.url_file}: {exc.strerror}"
            ) from None
        if not url:
            raise ConfigError(f"{target.where}: url_file {target.url_file} is empty")
        return url
    assert target.url_env is not None
    url = os.environ.get(target.url_env, "").strip()
    if not url:
        raise ConfigError(f"{target.where}: ${target.url_env} is not set (it holds the URL)")
    return url


def _service(target: NotifySpec, url: str) -> Any:
    import apprise

    service = apprise.Apprise.instantiate(url)
    if service is None:
        raise ConfigError(
            f"{target.where}: the URL from {_source(target)} ({scheme_of(url)}) is not one "
            "apprise can send to (see https://github.com/caronc/apprise/wiki for the forms)"
        )
    return service


def _source(target: NotifySpec) -> str:
    return f"${target.url_env}" if target.url_env else str(target.url_file)


def parse_check(target: NotifySpec) -> str:
    """For ``rotator doctor``: the URL is there and apprise understands it; sends nothing."""
    url = resolve_url(target)
    _service(target, url)
    return f"{scheme_of(url)} URL from {_source(target)} parses; events: {', '.join(target.on)}"


class Notifier:
    """Delivers notices to the ``[[notify]]`` targets that want them."""

    def __init__(
        self,
        targets: Sequence[NotifySpec],
        *,
        audit: Any = None,
        on_result: Callable[[str, bool], None] | None = None,
        attempts: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.5,
        repeat: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.targets = tuple(targets)
        self.audit = audit
        self.on_result = on_result
        self.attempts, self.timeout, self.backoff = max(1, attempts), timeout, backoff
        self.repeat = repeat
        self.clock = clock
        self._queue: queue.Queue[tuple[NotifySpec, Notice]] = queue.Queue(QUEUE_LIMIT)
        self._sent_states: dict[tuple[str, str | None], tuple[str, datetime]] = {}
        self._busy = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Notifier({', '.join(t.where for t in self.targets)})"

    # -- the caller's side: never blocks, never raises -------------------------------------
    def wanted_by(self, notice: Notice) -> list[NotifySpec]:
        about = notice.credential
        return [
            t
            for t in self.targets
            if notice.event in t.on
            and (not t.credentials or about is None or about in t.credentials)
        ]

    def submit(self, notice: Notice) -> int:
        """Queue ``notice`` for every target that wants it; returns how many were queued."""
        targets = self.wanted_by(notice)
        if not targets or not self._fresh(notice):
            return 0
        queued = 0
        for target in targets:
            with self._idle:
                self._busy += 1
            try:
                self._queue.put_nowait((target, notice))
            except queue.Full:
                self._done()
                self._failed(target, notice, NotifyError("too many notifications queued"), 0)
                continue
            queued += 1
        self._start()
        return queued

    def clear(self, credential: str) -> None:
        """Forget the lasting states sent for ``credential`` (it rotated: they are over)."""
        for key in [k for k in self._sent_states if k[1] == credential]:
            del self._sent_states[key]

    def flush(self, timeout: float) -> bool:
        """Wait until every queued notice was delivered or given up, at most ``timeout``
        seconds; False if some are still under way."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _fresh(self, notice: Notice) -> bool:
        """A lasting state (expiring, stuck...) is sent once, then again after ``repeat``."""
        if not notice.state:
            return True
        key, now = (notice.event, notice.credential), self.clock()
        sent = self._sent_states.get(key)
        if sent is not None and sent[0] == notice.state and now - sent[1] < self.repeat:
            return False
        self._sent_states[key] = (notice.state, now)
        return True

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
            self._thread.start()

    def _done(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    # -- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            target, notice = self._queue.get()
            try:
                self._deliver(target, notice)
            except Exception as exc:  # a notification never takes the worker down
                self._failed(target, notice, NotifyError(f"{type(exc).__name__}"), 0)
            finally:
                self._done()

    def _deliver(self, target: NotifySpec, notice: Notice) -> None:
        error: RotatorError = NotifyError("not attempted")
        for attempt in range(1, self.attempts + 1):
            try:
                self._send(target, notice)
            except ConfigError as exc:  # nothing to retry: the URL is missing or malformed
                self._failed(target, notice, exc, attempt)
                return
            except NotifyError as exc:
                error = exc
                if attempt < self.attempts:
                    time.sleep(self.backoff * 2 ** (attempt - 1))  # backoff, not readiness
                continue
            self._result(target, notice, "sent", None, attempt)
            return
        self._failed(target, notice, error, self.attempts)

    def _send(self, target: NotifySpec, notice: Notice) -> None:
        import apprise

        url = resolve_url(target)
        sender = apprise.Apprise()
        sender.add(_service(target, url))
        result = sender.notify(
            body=notice.body,
            title=notice.title,
            notify_type=notice.notify_type,
            timeout=self.timeout,
        )
        if not result:
            status = getattr(getattr(result, "status", None), "name", "failure").lower()
            raise NotifyError(
                f"{target.where}: {scheme_of(url)} receiver did not take the notification "
                f"({status})"
            )

    def _failed(self, target: NotifySpec, notice: Notice, exc: RotatorError, attempts: int) -> None:
        self._result(target, notice, "failed", exc, attempts)

    def _result(
        self,
        target: NotifySpec,
        notice: Notice,
        outcome: str,
        error: RotatorError | None,
        attempts: int,
    ) -> None:
        if self.audit is not None:
            self.audit.event(
                notice.credential or "-",
                "notify",
                outcome,
                rotation_id=notice.rotation_id,
                target=target.where,
                error=error,
                event=notice.event,
                attempts=attempts,
            )
        if self.on_result is not None:
            self.on_result(notice.event, error is None)
