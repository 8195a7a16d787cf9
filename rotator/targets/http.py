"""The one HTTP layer for every target Rotator talks to (TeamCity, Airflow).

Why one layer: timeouts, retries and error translation must behave the same everywhere, and
the one place that touches headers is the one place that must keep tokens out of messages.

- explicit (connect, read) timeouts on every request;
- retries with exponential backoff and full jitter on connection errors, timeouts and 5xx only,
  never on a 4xx, and for a POST only when the caller says it is safe;
- errors become ``rotator.errors.Target*`` with method, path, status and the server's own first
  error line, with every known secret value redacted (also in its JSON-, backslash-, URL- and
  HTML-escaped forms), redacted *before* the line is shortened; never a header, never a body;
- a target that cannot be reached is named by its full URL (never userinfo, never a query
  string) with the cause told apart (name does not resolve, refused, connect or read timeout,
  TLS verification or handshake, connection closed) and a hint the user can act on;
- a 2xx that is not what the API promises (an HTML login page, truncated JSON, an array where
  an object belongs) is ``TargetMalformed``, never success: callers decode JSON only through
  ``HttpClient.json``.
"""

from __future__ import annotations

import functools
import html
import json as jsonlib
import random
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase
from requests.exceptions import ChunkedEncodingError, ContentDecodingError, InvalidHeader

from backends.env_session import EnvOnceSession
from rotator.errors import (
    TargetAuthError,
    TargetDenied,
    TargetError,
    TargetMalformed,
    TargetNotFound,
    TargetUnavailable,
)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "rotator/0.1"
REDACTED = "<redacted>"
MESSAGE_LIMIT = 300
"""The server's own words are cut to this many characters, after redaction."""


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class BearerAuth(AuthBase):
    """``Authorization: Bearer``; its repr never shows the token.

    A token that is not one word of visible ASCII (a line break from a token file, say) is
    refused here with ``InvalidHeader`` naming no value: sent on, ``http.client`` would raise a
    ``ValueError`` quoting the whole header, token included, outside the error tree.
    """

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not _VISIBLE_ASCII.fullmatch(self.token):
            raise InvalidHeader("the bearer token is not one word of visible ASCII characters")
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


# -- redaction -------------------------------------------------------------------------------
_BACKSLASH = r"\\(?i:u005c)|\\|(?i:%5c|%255c|&#0*+92;|&#x0*+5c;)"
"""One backslash, JSON-escaped as ``\\u005c`` (tried first: the match never backtracks),
plain, URL-encoded (once or twice) or HTML-escaped."""
_LONG_RUN = re.compile(f"(?:{_BACKSLASH}){{9,}}+")
"""Nine or more backslashes in a row: shortened to eight before redacting. Escaping adds one
or a few; a longer run is a hostile server's way to make every match attempt scan it."""


def _char_pattern(ch: str) -> str:
    """A regex for one character of a secret as a server may render it.

    A server quoting our request back may JSON-escape it (``\\"``, ``\\u002f``), escape ``/``
    as ``\\/`` (Java and PHP encoders do), URL-encode it (once or twice), HTML-escape it,
    ``repr`` it (``\\'``), or have it read as Latin-1; any of these per character, mixed, and
    behind any number of backslashes (a JSON document quoted inside another).

    The leading backslashes are matched possessively (``\\*+``) and every form is written
    without its own leading backslash, so no input makes a match backtrack (``redact`` also
    shortens long runs of backslashes first, so that no attempt scans far).
    """
    if ch.isascii() and ch.isalnum():
        return re.escape(ch)
    if ch == "\\":  # a run of them: one or more, each plain, URL- or HTML-escaped
        return f"(?:{_BACKSLASH})++"
    code = ord(ch)
    escaped = jsonlib.dumps(ch)[1:-1]  # JSON's own escape, e.g. for a quote, a newline, é
    forms = {re.escape(ch), re.escape(escaped.lstrip("\\"))}
    if code < 0x10000:
        forms.add(f"(?i:u{code:04x})")
    else:
        high, low = escaped.split("\\u")[1:]
        forms.add(f"(?i:u{high}\\\\*+u{low})")
    once = quote(ch, safe="")
    forms.add(f"(?i:{re.escape(once)})")
    forms.add(f"(?i:{re.escape(quote(once, safe=''))})")
    if ch == " ":
        forms.add(r"\+")
    if not ch.isascii():  # UTF-8 read as Latin-1: what a client makes of text with no charset
        forms.add(re.escape(ch.encode("utf-8", "surrogatepass").decode("latin-1")))
    forms.add(re.escape(html.escape(ch)))
    forms.add(f"&#0*+{code};")
    forms.add(f"(?i:&#x0*+{code:x};)")
    return r"\\*+(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


@functools.lru_cache(maxsize=512)
def _secret_pattern(secret: str) -> re.Pattern[str]:
    collapsed = re.sub(r"\\+", "\\\\", secret)  # a run of backslashes: one group
    return re.compile("".join(_char_pattern(ch) for ch in collapsed))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (of 4+ characters) replaced, in any escaped form.

    Longest first, so a secret that contains another is replaced whole.
    """
    text = _LONG_RUN.sub(lambda _: "\\" * 8, text)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = _secret_pattern(secret).sub(REDACTED, text)
    return text


def _cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Shorten already-redacted text; never leave half a ``<redacted>`` marker behind."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    marker = head.rfind("<", max(0, limit - len(REDACTED) + 1))
    if marker != -1 and text.startswith(REDACTED, marker):
        head = head[:marker]
    return head.rstrip() + " [...]"


# -- what a response is ----------------------------------------------------------------------
def _media_type(response: requests.Response) -> str:
    return (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _is_html(media: str) -> bool:
    return media in ("text/html", "application/xhtml+xml")


def _is_json(media: str) -> bool:
    return media in ("application/json", "text/json") or media.endswith("+json")


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def _decode(response: requests.Response, raw: bytes) -> str:
    """Text as the server meant it: its declared charset, else UTF-8 (``requests`` would guess
    Latin-1 for ``text/*``, and a secret garbled that way would slip past redaction)."""
    declared = "charset=" in (response.headers.get("Content-Type") or "").lower()
    try:
        return raw.decode(
            response.encoding if declared and response.encoding else "utf-8", "replace"
        )
    except LookupError:
        return raw.decode("utf-8", "replace")


def _html_title(response: requests.Response) -> str:
    """The page's ``<title>``, one line: tells a user which login page stood in the way."""
    found = _TITLE.search(response.content[:65536])
    if not found:
        return ""
    return " ".join(html.unescape(_decode(response, found.group(1))).split())[:80]


def _server_message(response: requests.Response) -> str:
    """The server's own words, one line, not yet redacted nor shortened: TeamCity's
    ``Details:`` line, Airflow's ``detail`` (only its ``msg`` parts when it is FastAPI's list:
    their ``input`` echoes the request body, a password included)."""
    media = _media_type(response)
    if _is_html(media):
        title = _html_title(response)
        return f"an HTML page titled {title!r}" if title else "an HTML page"
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("detail"):
        detail = data["detail"]
        if isinstance(detail, list):
            said = [str(i["msg"]) for i in detail if isinstance(i, dict) and i.get("msg")]
            return "; ".join(said)
        return " ".join(str(detail).split())
    body = _decode(response, response.content)
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Details:"):
            return line.removeprefix("Details:").strip()
    return lines[0] if lines else ""


# -- why a target could not be reached -------------------------------------------------------
def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: requests keeps urllib3's in ``args``, urllib3
    keeps the socket's or ssl's in ``reason``, ``__cause__`` and ``args``."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [*current.args, getattr(current, "reason", None)]
        nested += [current.__cause__, current.__context__]
        todo.extend(item for item in nested if isinstance(item, BaseException))


def _origin(base_url: str) -> tuple[str, str, str]:
    """``(scheme://host:port, host, base path)`` of a URL, without userinfo or query."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}", host, parts.path.rstrip("/")


class HttpClient:
    """A ``requests.Session`` bound to one base URL, with Rotator's rules.

    ``target`` names the system in messages ("TeamCity", "Airflow"); ``section`` is the config
    section hints point to (default ``target.lower()``, e.g. ``[teamcity] url``); ``auth_hint``
    is added to a 401's message to say which credential was refused (e.g. "the token in
    $TEAMCITY_TOKEN").
    """

    def __init__(
        self,
        base_url: str,
        *,
        target: str,
        auth: AuthBase | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        verify: bool | str = True,
        auth_hint: str | None = None,
        secrets: Iterable[str] = (),
        section: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.target = target
        self.section = f"[{section or target.lower()}]"
        self.timeout = (connect_timeout or min(timeout, 5.0), timeout)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.auth_hint = auth_hint
        self.session = EnvOnceSession()
        self.session.auth = auth
        self.session.verify = verify
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self._secrets = [s for s in secrets if s]
        if isinstance(auth, BearerAuth):
            self._secrets.append(auth.token)
        self.origin, self.host, self._base_path = _origin(self.base_url)

    def __repr__(self) -> str:
        return f"HttpClient({self.target} at {self.origin}{self._base_path})"

    def add_secret(self, value: str) -> None:
        """Redact ``value`` from every message this client raises from now on."""
        if value and value not in self._secrets:
            self._secrets.append(value)

    def url_for(self, path: str) -> str:
        """The full URL of ``path`` as messages show it: scheme://host:port/path, without
        userinfo or query string (either may hold a secret)."""
        return f"{self.origin}{self._base_path}{path.split('?')[0]}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: str | bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
        auth: AuthBase | None = None,
    ) -> requests.Response:
        """Send, retrying what is safe to retry; return a 2xx response or raise Target*.

        A 2xx HTML page is ``TargetMalformed``: no REST call Rotator makes answers HTML, so it
        is a login page (an SSO proxy) or a web UI standing where the API should be.
        """
        method = method.upper()
        may_retry = (method in IDEMPOTENT) if retry is None else retry
        attempts = 1 + (self.retries if may_retry else 0)
        url = f"{self.base_url}{path}"
        last: Exception | None = None
        refused: TargetError | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._delay(attempt))  # backoff between retries, not a readiness wait
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=self.timeout,
                    auth=auth,
                    # Per request: otherwise $REQUESTS_CA_BUNDLE silently overrides Session.verify.
                    verify=self.session.verify,
                )
            except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
                last = exc
                continue
            except requests.RequestException as exc:
                # Raised below, outside this block: an exception kept as the context may quote
                # a header (InvalidHeader shows the Authorization value).
                refused = self._not_sent(method, path, exc)
                break
            if response.status_code >= 500:
                last = self._error(method, path, response)
                continue
            if response.status_code >= 400:
                raise self._error(method, path, response)
            if _is_html(_media_type(response)):
                accept = (headers or {}).get("Accept") or self.session.headers["Accept"]
                expected = "JSON" if "json" in str(accept) else str(accept)
                raise self.malformed(response, method, path, f"not {expected}", login_hint=True)
            return response
        if refused is not None:
            raise refused
        if isinstance(last, TargetError):
            raise last
        assert last is not None
        raise self._unreachable(method, path, last, attempts, may_retry) from None

    def json(
        self, response: requests.Response, method: str, path: str, *, expect: type = dict
    ) -> Any:
        """The JSON body of a 2xx ``response`` to ``method path``, of type ``expect`` (``dict``,
        ``list`` or ``object`` for any), or ``TargetMalformed``.

        The one place a target's answer is decoded, so that an HTML page, a body of another
        type, truncated JSON or an array where an object belongs all fail the same way, naming
        where and what but never quoting the body (a token create's body holds the token).
        """
        media = _media_type(response)
        if _is_html(media):
            raise self.malformed(response, method, path, "not JSON", login_hint=True)
        if media and not _is_json(media):
            raise self.malformed(response, method, path, "not JSON")
        problem = None
        try:
            data = jsonlib.loads(response.content)
        except UnicodeDecodeError:
            problem = "not JSON (the body is not text)"
        except ValueError as exc:  # JSONDecodeError: its msg and position, never its doc
            pos = getattr(exc, "pos", None)
            at = f" at byte {pos} of {len(response.content)}" if pos is not None else ""
            problem = (
                "an empty body, not JSON"
                if not response.content.strip()
                else f"not valid JSON ({getattr(exc, 'msg', 'undecodable')}{at}: truncated?)"
            )
        if problem is not None:
            raise self.malformed(response, method, path, problem)
        if expect is not object and not isinstance(data, expect):
            raise self.malformed(
                response,
                method,
                path,
                f"{_json_kind(data)} where {_EXPECTED.get(expect, expect.__name__)} belongs",
            )
        return data

    def malformed(
        self,
        response: requests.Response,
        method: str,
        path: str,
        problem: str,
        *,
        login_hint: bool = False,
    ) -> TargetMalformed:
        """``TargetMalformed`` for an answer that is not what the API promises.

        Message: ``<target> answered <status> to <METHOD> <path> with <content type>,
        <problem>`` (+ for an HTML page: its title and "a login page? check [section] url").
        """
        media = _media_type(response) or "no content type"
        text = (
            f"{self.target} answered {response.status_code} to {method} {path} with {media}, "
            f"{problem}"
        )
        if login_hint:
            title = _html_title(response)
            notes = [f"a page titled {title!r}"] if title else []
            if response.history:
                notes.append(f"after a redirect to {urlsplit(response.url).path or '/'}")
            notes.append(f"a login page? check {self.section} url")
            text += f" ({'; '.join(notes)})"
        return TargetMalformed(
            redact(text, self._secrets),
            status=response.status_code,
            method=method,
            path=path,
            content_type=_media_type(response) or None,
        )

    def _not_sent(self, method: str, path: str, exc: requests.RequestException) -> TargetError:
        """The other ``requests`` failures, kept inside the error tree and named by class
        only: their own text may quote a header or the body."""
        url, name = self.url_for(path), type(exc).__name__
        if isinstance(exc, requests.TooManyRedirects):
            return TargetMalformed(
                f"{self.target} redirected {method} {url} too many times ({name}): a login "
                f"loop? check {self.section} url",
                method=method,
                path=path,
            )
        if isinstance(exc, ContentDecodingError):
            return TargetMalformed(
                f"{self.target} answered {method} {url} with a body that does not decode ({name})",
                method=method,
                path=path,
            )
        return TargetError(
            f"{method} {url} could not be sent to {self.target} ({name}); check {self.section} "
            "url, and that the credential is one line of text"
        )

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography

    def _error(self, method: str, path: str, response: requests.Response) -> TargetError:
        status = response.status_code
        said = _cut(redact(_server_message(response), self._secrets))
        text = f"{self.target} answered {status} to {method} {path}" + (f": {said}" if said else "")
        text = redact(text, self._secrets)
        if status == 401:
            hint = (
                f" ({self.auth_hint} was refused: missing, expired or revoked?)"
                if self.auth_hint
                else ""
            )
            return TargetAuthError(text + hint, status=status)
        if status == 403:
            return TargetDenied(text, status=status)
        if status == 404:
            return TargetNotFound(text, status=status)
        if status >= 500:
            return TargetUnavailable(text, status=status)
        return TargetError(text, status=status)

    def _unreachable(
        self, method: str, path: str, exc: Exception, attempts: int, idempotent: bool
    ) -> TargetUnavailable:
        """Say which URL could not be reached, why, and what to check.

        Format: ``<target> could not be reached|timed out: <METHOD> <url>: <cause> (<exception
        names>, <n> attempt(s)); <hint>[; the <METHOD> may have been carried out all the same]``
        (the last clause when the request was sent and its outcome is unknown).
        """
        chain = list(_chain(exc))
        innermost = [
            type(e).__name__ for e in chain if not isinstance(e, requests.RequestException)
        ]
        label = ", ".join(dict.fromkeys([type(exc).__name__, *innermost[-1:]]))
        verb, cause, hint, sent = self._diagnose(exc, chain)
        text = (
            f"{self.target} {verb}: {method} {self.url_for(path)}: {cause} "
            f"({label}, {attempts} attempt(s)); {hint}"
        )
        if sent and not idempotent:
            text += f"; the {method} may have been carried out all the same"
        return TargetUnavailable(redact(text, self._secrets))

    def _diagnose(self, exc: Exception, chain: list[BaseException]) -> tuple[str, str, str, bool]:
        """``(verb, cause, hint, request possibly carried out)`` for a failed connection."""
        section, origin = self.section, self.origin
        connect_s, read_s = self.timeout
        cert = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
        tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
        if cert is not None:
            why = str(cert.verify_message or cert.reason or "certificate verify failed")
            if "mismatch" in why.lower():
                hint = (
                    f"the certificate is not issued for {self.host}: use the name it names in "
                    f"{section} url"
                )
            elif isinstance(self.session.verify, str):
                hint = f"the CA file in {section} ca_bundle does not vouch for this certificate"
            else:
                hint = f"set {section} ca_bundle to your CA file"
            return "could not be reached", f"TLS verification failed: {why}", hint, False
        if tls is not None or isinstance(exc, requests.exceptions.SSLError):
            why = str(getattr(tls, "reason", None) or tls or exc).lower().replace("_", " ")
            plain_http = any(w in why for w in ("version number", "record layer", "packet length"))
            hint = (
                f"does {origin} speak HTTPS? if it serves plain HTTP, use http:// in {section} url"
                if plain_http
                else f"check the scheme and port in {section} url and the server's TLS setup"
            )
            return "could not be reached", f"TLS handshake failed: {why}", hint, False
        if any(
            isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError"
            for e in chain
        ):
            hint = f"check the host name in {section} url (and this machine's DNS)"
            return "could not be reached", f"the name {self.host} does not resolve", hint, False
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            hint = f"is {self.target} running at {origin}? check {section} url"
            return "could not be reached", "connection refused", hint, False
        if isinstance(exc, requests.ConnectTimeout):
            hint = f"is {origin} reachable from here (firewall, VPN, proxy)? check {section} url"
            return "timed out", f"no connection within {connect_s:g}s", hint, False
        if isinstance(exc, requests.ReadTimeout) or any(
            type(e).__name__ == "ReadTimeoutError" for e in chain
        ):
            hint = (
                f"{self.target} at {origin} is slow or stuck; raise {section} timeout if it is "
                "only slow"
            )
            return "timed out", f"connected, but no answer within {read_s:g}s", hint, True
        if isinstance(exc, requests.Timeout):
            return "timed out", "no answer in time", f"check {section} timeout", True
        if isinstance(exc, ChunkedEncodingError) or any(
            type(e).__name__ == "IncompleteRead" for e in chain
        ):
            hint = f"a proxy in front of {self.target} cutting answers? check {section} url"
            return "could not be reached", "the answer broke off before its end", hint, True
        if any(
            isinstance(e, ConnectionResetError | ConnectionAbortedError)
            or type(e).__name__ in ("RemoteDisconnected", "ProtocolError")
            for e in chain
        ):
            hint = (
                f"is {origin} really {self.target}, not a proxy cutting requests? "
                f"check {section} url"
            )
            return "could not be reached", "the connection was closed without an answer", hint, True
        return "could not be reached", "connection failed", f"check {section} url", True

    def close(self) -> None:
        self.session.close()


_EXPECTED: dict[type, str] = {dict: "an object", list: "an array"}


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, in the words of a message: "a JSON array"."""
    if isinstance(value, bool):
        return "a JSON boolean"
    kinds: dict[type, str] = {dict: "object", list: "array", str: "string", int: "number"}
    kind = next((k for t, k in kinds.items() if isinstance(value, t)), None)
    if value is None:
        return "JSON null"
    return f"a JSON {kind or 'number'}"
