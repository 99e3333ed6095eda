"""The one exception tree of fedinf.

Every error fedinf raises on purpose is a :class:`FedinfError`. Each class carries the HTTP ``status_code``, a stable
machine-readable ``code``, the OpenAI error ``type`` and whether a retry may succeed (``retryable``). The mapping to
OpenAI's wire shape happens in exactly one place: :func:`fedinf.server.errors.error_response`.

    FedinfError
    ├── ConfigError                      (startup; names file, line and key)
    ├── RequestError            400      invalid_request_error
    │   ├── SchemaError         400      response_format schema invalid or unsatisfiable
    │   ├── PayloadTooLarge     413
    │   └── InvalidDocument     400      a document that cannot be read (corrupt, wrong type)
    │       ├── InvalidX12      400      not a readable X12 interchange (with the segment position)
    │       ├── EncryptedDocument 422    password-protected document
    │       └── NeedsOCR        422      no text layer (image-only): OCR it first
    ├── AuthError               401
    ├── Forbidden               403
    │   └── PolicyViolation     403      no eligible model (reasons, never content)
    ├── NotFound                404      unknown model / route / task / collection / document / endpoint
    ├── MethodNotAllowed        405
    ├── Conflict                409      already exists (a collection of that name)
    ├── CapabilityError         422      the target cannot honour a parameter
    ├── OutputValidationError   422      structured output failed after bounded re-asks
    │   └── OutputTruncated     422
    ├── RateLimited             429      (retry_after)
    ├── ServiceUnavailable      503      shutting down / not ready
    └── BackendError            502      upstream failed
        ├── BackendRejected     502      upstream said 4xx (not retryable)
        ├── BackendUnavailable  503      upstream 429/5xx/connection (retryable)
        ├── BackendTimeout      504      (retryable)
        ├── StreamInterrupted   502      failed after the first streamed byte (never retried)
        └── AllTargetsFailed    502      every eligible target failed; carries each failure
"""

from __future__ import annotations

from typing import Any


class FedinfError(Exception):
    """Base class. ``message`` must never contain request content or entity values."""

    status_code: int = 500
    code: str = "internal_error"
    type: str = "server_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's error object (plus fedinf details when present)."""
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.details:
            err["fedinf"] = self.details
        return {"error": err}


class ConfigError(FedinfError):
    code = "config_error"
    type = "config_error"

    def __init__(self, message: str, *, errors: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = errors or [message]


class RequestError(FedinfError):
    status_code = 400
    code = "invalid_request"
    type = "invalid_request_error"


class SchemaError(RequestError):
    code = "invalid_schema"


class PayloadTooLarge(RequestError):
    status_code = 413
    code = "payload_too_large"


class InvalidDocument(RequestError):
    """A document that cannot be read: corrupt, truncated, binary where text was expected, unsupported type."""

    code = "invalid_document"


class InvalidX12(InvalidDocument):
    """Text that is not a readable X12 interchange (no ISA, broken envelope, unsupported transaction/version).
    ``details`` carry ``segment_index`` (1-based position of the offending segment in the file)."""

    code = "invalid_x12"


class EncryptedDocument(InvalidDocument):
    """A password-protected document: fedinf does not take passwords; decrypt it first."""

    status_code = 422
    code = "encrypted_document"


class NeedsOCR(InvalidDocument):
    """A document without a text layer (e.g. a scanned, image-only PDF): run OCR on it first."""

    status_code = 422
    code = "needs_ocr"


class UnsupportedMediaType(InvalidDocument):
    """A document of a kind no loader reads (e.g. a Word file or a HEIC photo): say what is accepted."""

    status_code = 415
    code = "unsupported_media_type"


class AuthError(FedinfError):
    status_code = 401
    code = "invalid_api_key"
    type = "authentication_error"


class Forbidden(FedinfError):
    status_code = 403
    code = "forbidden"
    type = "permission_error"


class PolicyViolation(Forbidden):
    code = "policy_violation"


class NotFound(FedinfError):
    status_code = 404
    code = "not_found"
    type = "invalid_request_error"


class MethodNotAllowed(FedinfError):
    status_code = 405
    code = "method_not_allowed"
    type = "invalid_request_error"


class Conflict(FedinfError):
    """The resource already exists (e.g. a collection of that name)."""

    status_code = 409
    code = "conflict"
    type = "invalid_request_error"


class CapabilityError(FedinfError):
    status_code = 422
    code = "unsupported_parameter"
    type = "invalid_request_error"


class OutputValidationError(FedinfError):
    status_code = 422
    code = "output_validation_failed"
    type = "output_error"


class OutputTruncated(OutputValidationError):
    code = "output_truncated"


class RateLimited(FedinfError):
    status_code = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(FedinfError):
    status_code = 503
    code = "service_unavailable"
    type = "server_error"
    retryable = True


class BackendError(FedinfError):
    status_code = 502
    code = "backend_error"
    type = "upstream_error"
    retryable = False


class BackendRejected(BackendError):
    code = "backend_rejected"


class BackendUnavailable(BackendError):
    status_code = 503
    code = "backend_unavailable"
    retryable = True


class BackendTimeout(BackendError):
    status_code = 504
    code = "backend_timeout"
    retryable = True


class StreamInterrupted(BackendError):
    code = "stream_interrupted"


class AllTargetsFailed(BackendError):
    code = "all_targets_failed"

    def __init__(self, message: str, *, failures: list[tuple[str, FedinfError]], **kw: Any) -> None:
        details = {"attempts": [{"target": t, "code": e.code, "message": e.message} for t, e in failures]}
        super().__init__(message, details=details, **kw)
        self.failures = failures
        last = failures[-1][1] if failures else None
        if last is not None and isinstance(last, BackendTimeout):
            self.status_code = 504
        elif last is not None and isinstance(last, BackendUnavailable):
            self.status_code = 503
