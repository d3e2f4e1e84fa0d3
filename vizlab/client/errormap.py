"""openai (and azure-identity) exceptions to :mod:`vizlab.errors`, keys redacted.

:class:`ErrorMapping` is a mixin of :class:`~vizlab.client.core.Client`: the messages name the
client's endpoint and deployment and say what to do next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from vizlab import errors
from vizlab.client.replies import filtered_categories, request_id_of
from vizlab.errors import ConfigurationError, redact

# The SDK honours a server-directed retry delay only up to this (openai/_constants.py
# MAX_RETRY_AFTER_DELAY = 2 * 60, with INITIAL_RETRY_DELAY 0.5 and MAX_RETRY_DELAY 8.0; read in
# openai 3.52.0, the version installed here); longer asks are not retried.
SDK_MAX_RETRY_AFTER_S = 120.0


def redact_obj(obj: Any, secrets: Sequence[str | None]) -> Any:
    """Redact every string inside a JSON-like structure (error bodies may echo anything)."""
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, Mapping):
        return {k: redact_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v, secrets) for v in obj]
    return obj



def retry_after_s(headers: Any) -> float | None:
    """The delay the service asked for, from ``retry-after-ms`` or ``retry-after`` (seconds)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    return None


def looks_like_image_problem(code: str, param: str, message: str) -> bool:
    haystack = f"{code} {param} {message}".lower()
    return "image" in haystack



class ErrorMapping:
    """Mixin: turn SDK exceptions into vizlab errors naming this client's endpoint."""

    endpoint: str
    deployment: str
    backend: str
    auth: str
    timeout: float
    max_retries: int
    _target: Any

    def _known_deployments(self) -> list[str]:
        return []

    def mapped_errors(self) -> contextlib.AbstractContextManager[None]:
        """A context manager turning openai exceptions into vizlab errors (keys redacted)."""
        return self._sdk_errors()


    @contextlib.contextmanager
    def _sdk_errors(self) -> Iterator[None]:
        """Turn openai (and azure-identity token) exceptions into vizlab errors, chained."""
        import openai

        try:
            yield
        except openai.OpenAIError as e:
            raise self._map_error(e) from e
        except Exception as e:
            if type(e).__module__.startswith("azure."):  # a token provider failing mid-session
                raise self._map_error(e) from e
            raise

    def _secrets(self) -> list[str | None]:
        return [self._target.api_key.reveal()]

    def _map_error(self, e: BaseException) -> errors.VizlabError:
        """The vizlab error for an openai (or azure-identity) exception, message redacted."""
        import openai

        secrets = self._secrets()
        where = self.endpoint
        dep = self.deployment

        def clean(text: str) -> str:
            return redact(text, secrets)

        shared_pid = getattr(self._target.local, "pid", None)
        if isinstance(e, openai.APITimeoutError):
            if shared_pid is not None:
                return errors.RequestTimeoutError(clean(
                    f"no answer from the built-in backend at {where} (process {shared_pid}, outside this "
                    f"kernel) within timeout={self.timeout:g} s after {self.max_retries} retries: it is busy "
                    "with a long request or stuck. This kernel is fine; run `python -m vizlab.local "
                    "--stop-shared` and connect() again to start a fresh one, or raise timeout="
                ))
            return errors.RequestTimeoutError(clean(
                f"no answer from {where} (deployment {dep}) within timeout={self.timeout:g} s after "
                f"{self.max_retries} retries: the service may be busy or the request large; raise "
                "timeout= in connect(), send fewer or smaller images, or try again"
            ))
        if isinstance(e, openai.APIConnectionError):
            if shared_pid is not None:
                return errors.BackendUnavailableError(clean(
                    f"could not reach the built-in backend at {where} (process {shared_pid}): it stopped "
                    "(idle, crashed or killed). Call vizlab.connect() again: it starts a fresh one"
                ))
            if urlsplit(where).hostname in ("127.0.0.1", "localhost", "::1"):
                hint = (
                    "For the built-in backend run `python -m vizlab.local` or call connect() with no "
                    "arguments; for Ollama, vLLM or LM Studio start the server first"
                )
            else:
                hint = "Check the endpoint URL, your network and proxy settings"
            cause = e.__cause__ or e.__context__
            detail = f" ({type(cause).__name__})" if cause is not None else ""
            return errors.BackendUnavailableError(clean(
                f"could not reach {where}{detail}: is the server running? {hint}."
            ))
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            headers = e.response.headers
            request_id = request_id_of(headers)
            return self._map_body(
                status, e.body, request_id=request_id, headers=headers, fallback=str(e.message)
            )
        if isinstance(e, openai.APIError):  # an error event in the middle of a stream
            return self._map_body(None, e.body, request_id=None, headers=None, fallback=str(e.message))
        if type(e).__module__.startswith("azure."):
            return errors.AuthenticationError(clean(
                f"could not get a Microsoft Entra ID token for {where}: run `az login` again, or set "
                f"AZURE_OPENAI_API_KEY. Details: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
            ))
        return ConfigurationError(clean(f"the openai SDK refused the request: {e}"))

    def _map_body(
        self, status: int | None, body: Any, *, request_id: str | None, headers: Any, fallback: str
    ) -> errors.APIError:
        secrets = self._secrets()
        body = redact_obj(body, secrets)
        err = body if isinstance(body, Mapping) else {}
        code = str(err.get("code") or "")
        param = str(err.get("param") or "")
        service_msg = redact(str(err.get("message") or fallback), secrets).strip().rstrip(".")
        where = self.endpoint
        dep = self.deployment
        kw: dict[str, Any] = {"status": status, "code": code or None, "request_id": request_id, "body": body}

        def msg(text: str) -> str:
            return redact(text, secrets)

        if status in (401, 403):
            if self.auth == "entra-id":
                advice = (
                    "check your account has the 'Cognitive Services OpenAI User' role on this resource "
                    "(it can take minutes to apply), or set AZURE_OPENAI_API_KEY"
                )
            elif self.backend == "openai":
                advice = "check OPENAI_API_KEY (or api_key=) is valid for this server and base_url"
            else:
                advice = "check AZURE_OPENAI_API_KEY belongs to this resource, or the endpoint"
            return errors.AuthenticationError(
                msg(f"the key was refused by {where} ({status}): {advice}. Service said: {service_msg}"), **kw
            )
        if status == 404 or (status == 400 and code == "unknown_model"):  # Azure v1 answers 400 unknown_model
            known = self._known_deployments()
            listing = f" Deployments/models there: {', '.join(known)}." if known else ""
            where_to_look = (
                "check the deployment name in the Azure AI Foundry portal (Deployments), which may differ "
                "from the model name, or set AZURE_OPENAI_DEPLOYMENT"
                if self.backend != "openai"
                else "check the model name (client.models() lists them), or set OPENAI_MODEL"
            )
            return errors.DeploymentNotFoundError(
                msg(f"no deployment or model {dep!r} at {where} ({status}): {where_to_look}.{listing} "
                    f"Service said: {service_msg}"),
                deployment=dep, **kw,
            )
        if status == 429:
            retry_after = retry_after_s(headers)
            wait = f" The service asked to wait {retry_after:g} s." if retry_after is not None else ""
            beyond = (
                " That is longer than the SDK waits by itself (120 s)."
                if retry_after is not None and retry_after > SDK_MAX_RETRY_AFTER_S else ""
            )
            return errors.RateLimitError(
                msg(f"rate limit at {where} (deployment {dep}) still hit after {self.max_retries} retries.{wait}"
                    f"{beyond} Wait and try again, send fewer tokens per minute (lower detail, fewer images), "
                    f"or raise the deployment's quota. Service said: {service_msg}"),
                retry_after=retry_after, **kw,
            )
        if status == 400 and code in ("unsupported_parameter", "unsupported_value"):
            info = getattr(self, "model_info", None)
            model = info.name if info is not None else dep
            fix = (
                "call chat(max_tokens=...) and vizlab sends max_completion_tokens where the registry says the "
                f"model is a reasoning model (connect(model=...) names the model behind deployment {dep})"
                if param == "max_tokens" else f"drop {param or 'that parameter'} from the call"
            )
            return errors.UnsupportedParameterError(
                msg(f"{where} refused {param or 'a parameter'} for deployment {dep} ({code}): {service_msg}. {fix}"),
                param=param, model=model, **kw,
            )
        inner_raw = err.get("innererror")
        inner: Mapping[str, Any] = inner_raw if isinstance(inner_raw, Mapping) else {}
        filter_results = (
            inner.get("content_filter_result") or inner.get("content_filter_results")
            or err.get("content_filter_result") or err.get("content_filter_results")
        )
        categories = filtered_categories(filter_results)
        is_filter = (
            code == "content_filter" or str(inner.get("code") or "") == "ResponsibleAIPolicyViolation"
            or bool(categories)
        )
        if is_filter and status in (400, None):
            named = ", ".join(categories) if categories else "unspecified"
            return errors.ContentFilterError(
                msg(f"the prompt was blocked by the content filter at {where} (categories: {named}): rephrase "
                    f"the text or use another image; the filter results are in err.body. Service said: {service_msg}"),
                categories=categories, **kw,
            )
        # Limits in the advice: 10 images per request (Azure seeds/03), 20 MB per image (OpenAI
        # "Images and vision" guide, checked 2025).
        if status in (400, 413, 415, 422) and looks_like_image_problem(code, param, service_msg):
            return errors.InvalidImageRequestError(
                msg(f"{where} refused an image ({status}): {service_msg}. Check every image is a PNG, JPEG, "
                    "GIF or WEBP under 20 MB, at most 10 per request, and that URLs are publicly reachable "
                    "(or send data URLs with vizlab.image_part)"),
                **kw,
            )
        if status in (400, 413, 415, 422):
            return errors.BadRequestError(
                msg(f"{where} refused the request ({status}{', ' + code if code else ''}): {service_msg}. "
                    "Check the parameters passed to chat() (reply.request shows the body)"),
                **kw,
            )
        if status == 408:
            return errors.RequestTimeoutError(
                msg(f"{where} timed out the request (408) after {self.max_retries} retries: try again, or send "
                    f"less. Service said: {service_msg}"), **kw,
            )
        if status is not None and status >= 500:
            return errors.APIError(
                msg(f"{where} failed with {status} after {self.max_retries} retries: the service is having "
                    f"trouble, try again later. Service said: {service_msg}"), **kw,
            )
        return errors.APIError(
            msg(f"{where} answered {status if status is not None else 'an error'} for deployment {dep}: {service_msg}"),
            **kw,
        )
