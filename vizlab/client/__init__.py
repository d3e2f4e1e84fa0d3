"""Send conversations with images to a vision chat model and get back a measured :class:`Reply`.

**Which backend** :func:`connect` reaches, first match wins:

1. Explicit arguments: ``backend=`` ("azure", "openai" or "local"); else ``endpoint=`` means
   Azure OpenAI, ``base_url=`` an OpenAI-compatible server, ``api_key=`` alone OpenAI.
   ``VIZLAB_BACKEND`` ("local", "azure" or "openai") forces the choice among the variables
   below; ``VIZLAB_BACKEND=local`` keeps a shell's Azure settings out of a workshop or a test run.
2. ``AZURE_OPENAI_ENDPOINT``: Azure OpenAI with ``AZURE_OPENAI_API_KEY``, or keyless
   Microsoft Entra ID when no key is set (azure-identity's ``DefaultAzureCredential``, so
   ``az login`` is enough). ``AZURE_OPENAI_DEPLOYMENT`` names the deployment (default
   ``gpt-4o``), ``OPENAI_API_VERSION`` the api-version (default :data:`DEFAULT_API_VERSION`).
3. ``OPENAI_API_KEY`` and/or ``OPENAI_BASE_URL``: OpenAI, or any OpenAI-compatible server
   (Ollama, vLLM, LM Studio: ``OPENAI_BASE_URL`` alone is enough, those servers ignore the key).
   ``OPENAI_MODEL`` (or ``model=``) names the model, default ``gpt-4o``.
4. Nothing set: the built-in local backend (:mod:`vizlab.local`), started once per interpreter
   on 127.0.0.1 on a free port in a background thread, shared by every ``connect()`` and stopped
   at exit. It speaks Azure's wire protocol and is reached through ``AzureOpenAI``, so the same
   code path is exercised offline as against the real service.

A ``.env`` file (current directory, then the source checkout root) is read first; variables
already set in the environment win over it. Azure's newer ``/openai/v1`` API needs no
api-version and works with the plain OpenAI client:
``connect(backend="openai", base_url="https://RES.openai.azure.com/openai/v1", api_key=KEY)``.

**What calls return.** :meth:`Client.chat` and :meth:`Client.achat` return a :class:`Reply`
(text, finish_reason, the usage the service reported next to vizlab's own estimate made
before sending, cost, latency, content-filter results, the exact request body and the raw
response JSON). :meth:`Client.stream` returns a :class:`ReplyStream`: iterate it for text as it
arrives, then read ``.reply``. Given a :class:`~vizlab.conversation.Conversation`, a successful
call appends the assistant turn; a failed or cancelled call leaves it exactly as it was. A plain
list of messages is never mutated. A reply cut short (``finish_reason`` "length" or
"content_filter") raises a ``UserWarning`` saying what to do, also listed by ``Reply.warnings()``.

**Errors** are the classes of :mod:`vizlab.errors`, chained to the openai exception, with
messages that name the endpoint and deployment and say what to do next: 401/403
:class:`~vizlab.errors.AuthenticationError`, 404 :class:`~vizlab.errors.DeploymentNotFoundError`,
400 :class:`~vizlab.errors.ContentFilterError` / :class:`~vizlab.errors.InvalidImageRequestError`
/ :class:`~vizlab.errors.BadRequestError`, 429 :class:`~vizlab.errors.RateLimitError` (only once
the SDK's own retries, which honour ``retry-after-ms`` / ``retry-after``, are spent), no answer
within ``timeout`` :class:`~vizlab.errors.RequestTimeoutError`, nothing listening
:class:`~vizlab.errors.BackendUnavailableError`. Keys never appear in a message, a repr, the
one-line description or a saved reply: outside text passes through :func:`vizlab.errors.redact`.

Trade-offs: retries are the openai SDK's (``max_retries``; it sleeps for the server's
``retry-after-ms``/``retry-after`` when that is at most 120 s, else backs off 0.5 s doubling to
8 s, and does not retry when the server asks for more than 120 s). ``achat`` opens a fresh async
SDK client per call so it is safe across event loops (one extra TCP handshake per call).

Layout: :mod:`~vizlab.client.targets` (which backend, endpoint and key; the built-in backend),
:mod:`~vizlab.client.core` (:class:`Client` and :func:`connect`), :mod:`~vizlab.client.chat`
(Chat Completions calls), :mod:`~vizlab.client.responses` (the Responses API),
:mod:`~vizlab.client.replies` (:class:`Reply`, :class:`ReplyStream`),
:mod:`~vizlab.client.errormap` (openai exceptions to vizlab errors).
"""

from __future__ import annotations

from vizlab.client.core import Client, connect
from vizlab.client.replies import Reply, ReplyStream
from vizlab.client.targets import DEFAULT_API_VERSION, DEFAULT_MODEL, ENTRA_SCOPE, LOCAL_MODEL_NAME

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_MODEL",
    "ENTRA_SCOPE",
    "LOCAL_MODEL_NAME",
    "Client",
    "Reply",
    "ReplyStream",
    "connect",
]
