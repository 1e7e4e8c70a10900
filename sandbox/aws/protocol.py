"""How the sandbox front reads an AWS request and writes an AWS error, per wire protocol.

boto3 signs every request with SigV4, whose credential scope names the service
(`Credential=AKID/20260101/us-east-1/rds/aws4_request`), so the front can route without knowing
hostnames. The operation is in the form body (query protocols: RDS, EC2, ElastiCache, ELBv2) or in
`X-Amz-Target` (JSON protocols: Secrets Manager, WAFv2, Health); REST services (EKS, S3) are matched
by service only. Errors are rendered the way each protocol's botocore parser expects, so product code
sees exactly the `ClientError` real AWS would raise.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")

PROTOCOLS = {
    "ec2": "ec2",
    "rds": "query",
    "elasticache": "query",
    "elasticloadbalancing": "query",
    "secretsmanager": "json",
    "wafv2": "json",
    "health": "json",
    "eks": "rest-json",
    "s3": "rest-xml",
}


@dataclass
class AwsRequest:
    """The parts of a signed request the front routes on."""

    service: str
    region: str
    action: str
    params: dict[str, str] = field(default_factory=dict)
    json_body: dict[str, object] = field(default_factory=dict)


def read_request(headers: dict[str, str], body: bytes) -> AwsRequest:
    match = _SCOPE.search(headers.get("Authorization", ""))
    region, service = (match.group(1), match.group(2)) if match else ("us-east-1", "unknown")
    action, params, payload = "", {}, {}
    target = headers.get("X-Amz-Target", "")
    if target:
        action = target.rsplit(".", 1)[-1]
        try:
            loaded = json.loads(body or b"{}")
            payload = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            payload = {}
    elif "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action", "")
    return AwsRequest(service, region, action, params, payload)


def request_id() -> str:
    return str(uuid.uuid4())


def error_response(service: str, code: str, message: str, status: int) -> tuple[int, dict[str, str], bytes]:
    """An AWS error in the service's own protocol: (status, headers, body)."""
    rid = request_id()
    protocol = PROTOCOLS.get(service, "query")
    msg = escape(message)
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid}, body
    if protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": rid}, body
    if protocol == "rest-xml":
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{msg}</Message>"
        return status, {"Content-Type": "application/xml"}, (xml + f"<RequestId>{rid}</RequestId></Error>").encode()
    if protocol == "ec2":
        xml = (f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
               f"<Message>{msg}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return status, {"Content-Type": "text/xml"}, xml.encode()
    xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message></Error>"
           f"<RequestId>{rid}</RequestId></ErrorResponse>")
    return status, {"Content-Type": "text/xml"}, xml.encode()


def query_response(action: str, namespace: str, result_xml: str) -> tuple[int, dict[str, str], bytes]:
    """A successful query-protocol answer wrapping `result_xml` in `<ActionResult>`."""
    xml = (f'<{action}Response xmlns="{namespace}"><{action}Result>{result_xml}</{action}Result>'
           f"<ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata></{action}Response>")
    return 200, {"Content-Type": "text/xml"}, xml.encode()


def json_response(payload: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id()}, json.dumps(
        payload, default=str
    ).encode()
