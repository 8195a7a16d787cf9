"""TeamCity's error responses: status, a ``text/plain`` body in the server's three-line shape.

::

    Responding with error, status code: 404 (Not Found).
    Details: jetbrains.buildServer.server.rest.errors.NotFoundException: User not found
    Could not find the entity requested. Check the reference is correct and the user has ...
"""

from __future__ import annotations

from http import HTTPStatus

_REST = "jetbrains.buildServer.server.rest.errors"
_HINTS = {
    400: "Invalid request. Please check the request URL and data are correct.",
    403: "Access denied. Check the user has enough permissions to perform the operation.",
    404: "Could not find the entity requested. Check the reference is correct and the user has "
    "permissions to access the entity.",
    405: "Unsupported method. Check the HTTP method used.",
    413: "Request body is too large.",
}


class HttpError(Exception):
    status = 500
    exception = "java.lang.RuntimeException"
    hint: str | None = None  # the last line, when not the status's usual one

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> str:
        reason = HTTPStatus(self.status).phrase
        lines = [f"Responding with error, status code: {self.status} ({reason})."]
        lines.append(f"Details: {self.exception}: {self.message}")
        hint = self.hint or _HINTS.get(self.status)
        if hint:
            lines.append(hint)
        return "\n".join(lines) + "\n"

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(HttpError):
    status = 400
    exception = f"{_REST}.BadRequestException"


class MalformedBody(BadRequest):
    """A body the server cannot read: the hint of ``WebApplicationExceptionMapper``."""

    hint = "Not supported request. Check that URL, HTTP method and transferred data are correct."


class LocatorError(BadRequest):
    """A locator the finder cannot process (``LocatorProcessExceptionMapper``)."""

    exception = f"{_REST}.LocatorProcessException"
    hint = "Invalid request. Check locator is specified correctly."


class Forbidden(HttpError):
    status = 403
    exception = f"{_REST}.AuthorizationFailedException"


class NotFoundError(HttpError):
    status = 404
    exception = f"{_REST}.NotFoundException"


class MethodNotAllowed(HttpError):
    status = 405
    exception = "javax.ws.rs.NotAllowedException"


class TooLarge(HttpError):
    status = 413
    exception = f"{_REST}.BadRequestException"


class Unauthorized(HttpError):
    """401: the body is one line, and both schemes are offered."""

    status = 401

    def body(self) -> str:
        return self.message + "\n"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="TeamCity", Bearer realm="TeamCity"'}


class _MediaError(HttpError):
    """415/406: the hint line only, without a ``Details:`` line."""

    header = ""

    def body(self) -> str:
        reason = HTTPStatus(self.status).phrase
        return (
            f"Responding with error, status code: {self.status} ({reason}).\n"
            f"Make sure you have supplied correct '{self.header}' header.\n"
        )


class UnsupportedMediaType(_MediaError):
    status = 415
    header = "Content-Type"


class NotAcceptable(_MediaError):
    status = 406
    header = "Accept"


AUTH_REQUIRED = 'Authentication required\nTo login manually go to "/login.html" page'
AUTH_INVALID = "Invalid authentication request or authentication scheme is not supported"
AUTH_EXPIRED = "Access token has expired"
