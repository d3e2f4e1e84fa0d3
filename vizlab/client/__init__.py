"""Send conversations with images to a vision chat model and get back a measured :class:`Reply`.

:func:`connect` picks the backend (arguments, then ``VIZLAB_BACKEND``, Azure, OpenAI variables,
else the built-in local backend on loopback); calls return a :class:`Reply` with the reported
usage beside vizlab's own estimate. A failed call leaves a conversation as it was; errors are
:mod:`vizlab.errors` classes that never show a key. Trade-offs: retries are the openai SDK's;
``achat`` opens a fresh async client per call (safe across event loops, one extra handshake).
Layout: ``targets``, ``transport``, ``modelstate``, ``core``, ``chat``, ``responses``, ``counting``,
``adapt``, ``replies``, ``errormap``; details: docs/internals.md#client
"""

from __future__ import annotations

from vizlab.client.adapt import ParameterAdaptedWarning
from vizlab.client.core import Client, connect
from vizlab.client.counting import EstimateWithCount, ServiceCount
from vizlab.client.replies import Reply, ReplyStream
from vizlab.client.targets import DEFAULT_API_VERSION, DEFAULT_MODEL, ENTRA_SCOPE, LOCAL_MODEL_NAME, BackendKind

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_MODEL",
    "ENTRA_SCOPE",
    "LOCAL_MODEL_NAME",
    "BackendKind",
    "Client",
    "EstimateWithCount",
    "ParameterAdaptedWarning",
    "ServiceCount",
    "Reply",
    "ReplyStream",
    "connect",
]
