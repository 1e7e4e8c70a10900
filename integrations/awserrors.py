"""boto3/botocore failures -> `integrations.errors` types, one clear line each.

The line says what was being done, then why it failed in the operator's terms: the exact IAM
permission the bot's role lacks, credentials AWS rejected, the endpoint that could not be reached,
a throttled API, or AWS's own refusal (a wrong state, a name already taken). AWS's message is kept
(clipped) after the explanation; nothing from the request is echoed, so no parameter (a secret
value, say) can leak through an error.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore import exceptions as bx
from botocore.exceptions import ClientError

from base.text import one_line
from integrations.errors import Conflict, Forbidden, IntegrationError, NotFound, Unavailable

LABELS = {"eks": "EKS", "rds": "RDS", "elbv2": "ELB", "s3": "S3", "health": "Health", "ec2": "EC2",
          "elasticache": "ElastiCache", "secretsmanager": "Secrets Manager", "wafv2": "WAF"}

# IAM actions whose names differ from the API operation's
IAM_EXCEPTIONS = {("s3", "ListObjectsV2"): "s3:ListBucket"}

ACCESS = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException",
          "AuthorizationError", "Forbidden"}
CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
               "SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthFailure", "RequestExpired", "InvalidToken"}
THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown",
             "RequestThrottled", "RequestThrottledException"}
NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "WAFNonexistentItemException", "DBInstanceNotFound"}
CONFLICT_HINTS = ("AlreadyExists", "InvalidDBInstanceState", "InvalidDBClusterState", "InvalidReplicationGroupState",
                  "ResourceInUse", "OptimisticLock", "InvalidParameter", "IncorrectInstanceState", "Validation",
                  "InvalidRequest", "Quota", "LimitExceeded", "ResourceLimitExceeded")


class ApiUnavailable(Unavailable):
    """The API is not offered to this account (AWS Health needs a Business or Enterprise support plan)."""


def system(service: str) -> str:
    return f"AWS {LABELS.get(service, service)}"


@cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def api_name(service: str, operation: str) -> str:
    """`describe_db_instances` -> `DescribeDBInstances`, from botocore's own service model."""
    model = _service_model(service)
    for name in model.operation_names:
        if botocore.xform_name(name) == operation:
            return str(name)
    raise KeyError(f"{service} has no operation {operation}")


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises a boto3 call: the service's signing name and the API name."""
    name = api_name(service, operation)
    return IAM_EXCEPTIONS.get((service, name)) or f"{_service_model(service).signing_name}:{name}"


def translate(exc: Exception, service: str, operation: str, what: str, endpoint: str, timeout: float
              ) -> IntegrationError:
    sysname = system(service)
    if isinstance(exc, ClientError):
        return _client_error(exc, service, operation, what)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return Forbidden(sysname, f"{what}: no usable AWS credentials (looked for the pod's IRSA web identity, "
                                  "the environment and the shared profile).", code="NoCredentials")
    if isinstance(exc, bx.ConnectTimeoutError):
        return Unavailable(sysname, f"{what}: network failure — no connection to {endpoint} within {timeout:g}s.",
                           code="Timeout")
    if isinstance(exc, bx.ReadTimeoutError):
        return Unavailable(sysname, f"{what}: {endpoint} did not answer within {timeout:g}s.", code="Timeout")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ProxyConnectionError):
        return Unavailable(sysname, f"{what}: network failure — could not connect to {endpoint}.",
                           code="Unreachable")
    if isinstance(exc, TimeoutError):
        return Unavailable(sysname, f"{what}: no answer within {timeout:g}s.", code="Timeout")
    return IntegrationError(sysname, f"{what}: {type(exc).__name__}: {one_line(str(exc))}", code=type(exc).__name__)


def _client_error(exc: ClientError, service: str, operation: str, what: str) -> IntegrationError:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", "Unknown"))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    error = _client_error_type(exc, service, operation, what, code, status)
    error.code = str(status) if status >= 500 else code  # AccessDenied, ThrottlingException, 500
    return error


def _client_error_type(exc: ClientError, service: str, operation: str, what: str, code: str, status: int
                       ) -> IntegrationError:
    message = one_line(str(exc.response.get("Error", {}).get("Message") or ""))
    sysname = system(service)
    said = f" (AWS: {message})" if message else ""
    if code in ACCESS or (status == 403 and code not in CREDENTIALS):
        return Forbidden(sysname, f"{what}: access denied — the bot's IAM role needs "
                                  f"`{iam_action(service, operation)}`{said}.")
    if code in CREDENTIALS:
        return Forbidden(sysname, f"{what}: AWS rejected the bot's credentials ({code}); check its role (IRSA) "
                                  "or keys.")
    if code == "SubscriptionRequiredException":
        return ApiUnavailable(sysname, "the AWS Health API is not available for this account (it needs a "
                                       "Business, Enterprise On-Ramp or Enterprise support plan).")
    if code in THROTTLED or status == 429:
        return Unavailable(sysname, f"{what}: AWS is throttling the bot's calls ({code}); try again in a minute.")
    if code in NOT_FOUND or "NotFound" in code or status == 404:
        return NotFound(sysname, f"{what}: not found{said}.")
    if any(hint in code for hint in CONFLICT_HINTS):
        return Conflict(sysname, f"{what}: AWS refused ({code}){said}.")
    if status >= 500:
        return Unavailable(sysname, f"{what}: AWS answered {status} ({code}); try again shortly.")
    return IntegrationError(sysname, f"{what}: {code}{said}.")
