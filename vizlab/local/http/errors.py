"""Azure-shaped error bodies for the built-in backend.

Every error is ``{"error": {"code", "message", "param", "type", ...}}`` with the status the
service uses; codes and messages follow what Azure OpenAI and OpenAI send, as quoted publicly.
Where no source was found vizlab chose a code (``invalid_image``, ``image_too_large``,
``BadRequest``, ``unknown_parameter``, ``RequestEntityTooLarge``, ``ServiceUnavailable``).
The codes and their sources: docs/internals.md#local
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

# Codes and messages as Azure OpenAI and OpenAI send them, quoted in public issue threads and docs
# (checked 2025): 401 "401" and 404 "DeploymentNotFound" below; 400 content_filter with
# innererror ResponsibleAIPolicyViolation (compl-ai/compl-ai#20, 2025-02-27); invalid_image_format
# (marketing-factory/ai-filemetadata#19, 2025-02-17). All codes: docs/internals.md#local.
AZURE_401_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your resource."
)
AZURE_401_MISSING_MESSAGE = (
    "Access denied due to missing subscription key. Make sure to include subscription key when "
    "making API calls (an 'api-key' header or 'Authorization: Bearer <key>')."
)
AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)
CONTENT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


class AzureError(Exception):
    """An error to send to the client as Azure-shaped JSON with ``status``."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        type: str | None = "invalid_request_error",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        bare: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.type = type
        self.headers = headers or {}
        self.extra = extra or {}
        # Only "code" and "message", as Azure's gateway sends its 401/404 bodies.
        self.bare = bare

    def body(self) -> dict[str, Any]:
        if self.bare:
            return {"error": {"code": self.code, "message": self.message, **self.extra}}
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "type": self.type,
        }
        error.update(self.extra)
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(code: str, message: str, param: str | None = None) -> AzureError:
    """A 400 ``invalid_request_error``."""
    return AzureError(400, code, message, param=param)


def missing_parameter(param: str) -> AzureError:
    """The service's 400 for a required parameter left out."""
    return bad_request("missing_required_parameter", f"Missing required parameter: '{param}'.", param)


def wrong_type(param: str, expected: str) -> AzureError:
    """The service's 400 for a parameter of the wrong JSON type (``expected``: "a string", "an object")."""
    return bad_request("invalid_type", f"Invalid type for '{param}': expected {expected}.", param)
