"""openai (and azure-identity) exceptions to :mod:`vizlab.errors`, keys redacted.

:class:`ErrorMapper` is the error part of a :class:`~vizlab.client.core.Client`: its messages name
the connection's endpoint and the deployment and say what to do next. A service error body goes
through one ordered table (:data:`BODY_RULES`) from status and code to a typed error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vizlab import errors
from vizlab.client.replies import filtered_categories, request_id_of
from vizlab.client.targets import BackendKind
from vizlab.errors import ConfigurationError, redact

if TYPE_CHECKING:
    from vizlab.client.modelstate import ModelState
    from vizlab.client.transport import Transport

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



def scrubbed(e: BaseException, secrets: Sequence[str | None]) -> BaseException:
    """``e`` with the key redacted from its message and body: it is chained under vizlab's error, so
    a traceback prints it (a service may echo the key in an error body)."""
    e.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in e.args)
    for attr in ("message", "body"):
        value = getattr(e, attr, None)
        if value is not None:
            try:
                setattr(e, attr, redact_obj(value, secrets))
            except AttributeError:  # a read-only attribute: args (what str() shows) is redacted already
                pass
    return e


def retry_after_s(headers: Any) -> float | None:
    """The delay the service asked for, from ``retry-after-ms`` or ``retry-after`` (seconds).

    A value that is not a finite, non-negative number is ignored (the other header may still hold one).

    >>> retry_after_s({"retry-after-ms": "1500"}), retry_after_s({"retry-after": "inf"})
    (1.5, None)
    """
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def looks_like_image_problem(code: str, param: str, message: str) -> bool:
    haystack = f"{code} {param} {message}".lower()
    return "image" in haystack



@dataclass(frozen=True)
class Failure:
    """One error answer from the service, read once: status, code, parameter and message."""

    status: int | None
    body: Any  # redacted
    code: str
    param: str
    service_msg: str
    headers: Any
    kw: dict[str, Any] = field(default_factory=dict)  # status, code, request_id, body for the error

    @property
    def err(self) -> Mapping[str, Any]:
        return self.body if isinstance(self.body, Mapping) else {}


class ErrorMapper:
    """Turn SDK exceptions into vizlab errors naming this connection's endpoint and deployment."""

    def __init__(
        self, transport: Transport, state: ModelState, *, known_deployments: Callable[[], list[str]] = list
    ) -> None:
        self.transport = transport
        self.state = state
        self.known_deployments = known_deployments

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn openai (and azure-identity token) exceptions into vizlab errors, chained."""
        import openai

        try:
            yield
        except openai.OpenAIError as e:
            raise self.map_error(e) from scrubbed(e, self.transport.secrets())
        except Exception as e:
            if type(e).__module__.startswith("azure."):  # a token provider failing mid-session
                raise self.map_error(e) from scrubbed(e, self.transport.secrets())
            raise

    def clean(self, text: str) -> str:
        return redact(text, self.transport.secrets())

    def map_error(self, e: BaseException) -> errors.VizlabError:
        """The vizlab error for an openai (or azure-identity) exception, message redacted."""
        import openai

        if isinstance(e, openai.APITimeoutError):
            return self._timeout()
        if isinstance(e, openai.APIConnectionError):
            return self._unreachable(e)
        if isinstance(e, openai.APIStatusError):
            headers = e.response.headers
            return self.map_body(
                e.status_code, e.body, request_id=request_id_of(headers), headers=headers, fallback=str(e.message)
            )
        if isinstance(e, openai.APIError):  # an error event in the middle of a stream
            return self.map_body(None, e.body, request_id=None, headers=None, fallback=str(e.message))
        if type(e).__module__.startswith("azure."):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return errors.AuthenticationError(self.clean(
                f"could not get a Microsoft Entra ID token for {self.transport.endpoint}: run `az login` again, "
                f"or set AZURE_OPENAI_API_KEY. Details: {first}"
            ))
        return ConfigurationError(self.clean(f"the openai SDK refused the request: {e}"))

    def _timeout(self) -> errors.VizlabError:
        t, pid = self.transport, self.transport.shared_pid
        if pid is not None:
            return errors.RequestTimeoutError(self.clean(
                f"no answer from the built-in backend at {t.endpoint} (process {pid}, outside this "
                f"kernel) within timeout={t.timeout:g} s after {t.max_retries} retries: it is busy "
                "with a long request or stuck. This kernel is fine; run `python -m vizlab.local "
                "--stop-shared` and connect() again to start a fresh one, or raise timeout="
            ))
        return errors.RequestTimeoutError(self.clean(
            f"no answer from {t.endpoint} (deployment {self.state.deployment}) within timeout={t.timeout:g} s "
            f"after {t.max_retries} retries: the service may be busy or the request large; raise "
            "timeout= in connect(), send fewer or smaller images, or try again"
        ))

    def _unreachable(self, e: BaseException) -> errors.VizlabError:
        where, pid = self.transport.endpoint, self.transport.shared_pid
        if pid is not None:
            return errors.BackendUnavailableError(self.clean(
                f"could not reach the built-in backend at {where} (process {pid}): it stopped "
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
        return errors.BackendUnavailableError(self.clean(f"could not reach {where}{detail}: is the server running? {hint}."))

    def map_body(
        self, status: int | None, body: Any, *, request_id: str | None, headers: Any, fallback: str
    ) -> errors.APIError:
        """The typed error for a service error ``body`` (the first rule of :data:`BODY_RULES` that matches)."""
        secrets = self.transport.secrets()
        body = redact_obj(body, secrets)
        err = body if isinstance(body, Mapping) else {}
        code = str(err.get("code") or "")
        kw: dict[str, Any] = {"status": status, "code": code or None, "request_id": request_id, "body": body}
        failure = Failure(
            status, body, code, str(err.get("param") or ""),
            redact(str(err.get("message") or fallback), secrets).strip().rstrip("."), headers, kw,
        )
        for matches, build in BODY_RULES:
            if matches(failure):
                return build(self, failure)
        raise AssertionError("the last rule of BODY_RULES matches every failure")  # pragma: no cover

    # -- one builder per row of BODY_RULES --

    def _refused_key(self, f: Failure) -> errors.APIError:
        if self.transport.auth == "entra-id":
            advice = (
                "check your account has the 'Cognitive Services OpenAI User' role on this resource "
                "(it can take minutes to apply), or set AZURE_OPENAI_API_KEY"
            )
        elif self.transport.backend is BackendKind.OPENAI:
            advice = "check OPENAI_API_KEY (or api_key=) is valid for this server and base_url"
        else:
            advice = "check AZURE_OPENAI_API_KEY belongs to this resource, or the endpoint"
        return errors.AuthenticationError(self.clean(
            f"the key was refused by {self.transport.endpoint} ({f.status}): {advice}. Service said: {f.service_msg}"
        ), **f.kw)

    def _not_found(self, f: Failure) -> errors.APIError:
        dep = self.state.deployment
        known = self.known_deployments()
        listing = f" Deployments/models there: {', '.join(known)}." if known else ""
        where_to_look = (
            "check the model name (client.models() lists them), or set OPENAI_MODEL"
            if self.transport.backend is BackendKind.OPENAI
            else "check the deployment name in the Azure AI Foundry portal (Deployments), which may differ "
            "from the model name, or set AZURE_OPENAI_DEPLOYMENT"
        )
        return errors.DeploymentNotFoundError(self.clean(
            f"no deployment or model {dep!r} at {self.transport.endpoint} ({f.status}): {where_to_look}.{listing} "
            f"Service said: {f.service_msg}"
        ), deployment=dep, **f.kw)

    def _rate_limited(self, f: Failure) -> errors.APIError:
        retry_after = retry_after_s(f.headers)
        wait = f" The service asked to wait {retry_after:g} s." if retry_after is not None else ""
        beyond = (
            " That is longer than the SDK waits by itself (120 s)."
            if retry_after is not None and retry_after > SDK_MAX_RETRY_AFTER_S else ""
        )
        return errors.RateLimitError(self.clean(
            f"rate limit at {self.transport.endpoint} (deployment {self.state.deployment}) still hit after "
            f"{self.transport.max_retries} retries.{wait}{beyond} Wait and try again, send fewer tokens per minute "
            f"(lower detail, fewer images), or raise the deployment's quota. Service said: {f.service_msg}"
        ), retry_after=retry_after, **f.kw)

    def _unsupported(self, f: Failure) -> errors.APIError:
        dep, param = self.state.deployment, f.param
        info = self.state.model_info
        fix = (
            "call chat(max_tokens=...) and vizlab sends max_completion_tokens where the registry says the "
            f"model is a reasoning model (connect(model=...) names the model behind deployment {dep})"
            if param == "max_tokens" else f"drop {param or 'that parameter'} from the call"
        )
        return errors.UnsupportedParameterError(self.clean(
            f"{self.transport.endpoint} refused {param or 'a parameter'} for deployment {dep} ({f.code}): "
            f"{f.service_msg}. {fix}"
        ), param=param, model=info.name if info is not None else dep, **f.kw)

    def _filtered(self, f: Failure) -> errors.APIError:
        categories = filter_categories(f)
        named = ", ".join(categories) if categories else "unspecified"
        return errors.ContentFilterError(self.clean(
            f"the prompt was blocked by the content filter at {self.transport.endpoint} (categories: {named}): "
            f"rephrase the text or use another image; the filter results are in err.body. Service said: "
            f"{f.service_msg}"
        ), categories=categories, **f.kw)

    def _bad_image(self, f: Failure) -> errors.APIError:
        # Limits in the advice: 10 images per request (Azure seeds/03), 20 MB per image (OpenAI
        # "Images and vision" guide, checked 2025).
        return errors.InvalidImageRequestError(self.clean(
            f"{self.transport.endpoint} refused an image ({f.status}): {f.service_msg}. Check every image is a "
            "PNG, JPEG, GIF or WEBP under 20 MB, at most 10 per request, and that URLs are publicly reachable "
            "(or send data URLs with vizlab.image_part)"
        ), **f.kw)

    def _bad_request(self, f: Failure) -> errors.APIError:
        return errors.BadRequestError(self.clean(
            f"{self.transport.endpoint} refused the request ({f.status}{', ' + f.code if f.code else ''}): "
            f"{f.service_msg}. Check the parameters passed to chat() (reply.request shows the body)"
        ), **f.kw)

    def _timed_out(self, f: Failure) -> errors.APIError:
        return errors.RequestTimeoutError(self.clean(
            f"{self.transport.endpoint} timed out the request (408) after {self.transport.max_retries} retries: "
            f"try again, or send less. Service said: {f.service_msg}"
        ), **f.kw)

    def _server_failed(self, f: Failure) -> errors.APIError:
        return errors.APIError(self.clean(
            f"{self.transport.endpoint} failed with {f.status} after {self.transport.max_retries} retries: the "
            f"service is having trouble, try again later. Service said: {f.service_msg}"
        ), **f.kw)

    def _other(self, f: Failure) -> errors.APIError:
        status = f.status if f.status is not None else "an error"
        return errors.APIError(self.clean(
            f"{self.transport.endpoint} answered {status} for deployment {self.state.deployment}: {f.service_msg}"
        ), **f.kw)


def filter_categories(f: Failure) -> list[str]:
    """The filtered categories of Azure's content filter results, wherever the body puts them."""
    inner = f.err.get("innererror")
    inner = inner if isinstance(inner, Mapping) else {}
    results = (
        inner.get("content_filter_result") or inner.get("content_filter_results")
        or f.err.get("content_filter_result") or f.err.get("content_filter_results")
    )
    return filtered_categories(results)


def is_filtered(f: Failure) -> bool:
    inner = f.err.get("innererror")
    inner_code = str(inner.get("code") or "") if isinstance(inner, Mapping) else ""
    return f.code == "content_filter" or inner_code == "ResponsibleAIPolicyViolation" or bool(filter_categories(f))


REFUSED = (400, 413, 415, 422)

# Status (and code) to error, first match wins; the order is the old if-chain's.
BODY_RULES: tuple[tuple[Callable[[Failure], bool], Callable[[ErrorMapper, Failure], errors.APIError]], ...] = (
    (lambda f: f.status in (401, 403), ErrorMapper._refused_key),
    (lambda f: f.status == 404 or (f.status == 400 and f.code == "unknown_model"), ErrorMapper._not_found),  # Azure v1: 400
    (lambda f: f.status == 429, ErrorMapper._rate_limited),
    (lambda f: f.status == 400 and f.code in ("unsupported_parameter", "unsupported_value"), ErrorMapper._unsupported),
    (lambda f: f.status in (400, None) and is_filtered(f), ErrorMapper._filtered),
    (lambda f: f.status in REFUSED and looks_like_image_problem(f.code, f.param, f.service_msg), ErrorMapper._bad_image),
    (lambda f: f.status in REFUSED, ErrorMapper._bad_request),
    (lambda f: f.status == 408, ErrorMapper._timed_out),
    (lambda f: f.status is not None and f.status >= 500, ErrorMapper._server_failed),
    (lambda f: True, ErrorMapper._other),
)
