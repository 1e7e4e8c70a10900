"""API errors as the real API server words them.

kubectl builds its "Error from server (NotFound): deployments.apps "x" not found" line from the
Status object's reason and message, and clients branch on `details`, so each constructor
reproduces apimachinery's `errors.New*` text exactly.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An API failure that the server turns into a `Status` response."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(qualified: str, name: str) -> dict[str, Any]:
    resource, _, group = qualified.partition(".")
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(qualified: str, name: str) -> ApiError:
    """`qualified` is resource.group ("deployments.apps") or just the resource for core ("pods")."""
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', _details(qualified, name))


def already_exists(qualified: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified} "{name}" already exists', _details(qualified, name))


def conflict(qualified: str, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(qualified, name))


def invalid(kind_group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """`kind_group` is Kind.group ("Deployment.apps") or Kind for core; causes are (field, message)."""
    text = ", ".join(f"{field}: {msg}" for field, msg in causes)
    kind, _, group = kind_group.partition(".")
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": msg, "field": field} for field, msg in causes
    ]
    return ApiError(422, "Invalid", f'{kind_group} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                    f"media types include: application/json, application/yaml (got {content_type})")


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
