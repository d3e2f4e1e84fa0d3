"""Responses API calls of :class:`~vizlab.client.core.Client` (``Client.respond``).

:class:`ResponsesCalls` is the mixin where ``respond`` (``POST /openai/v1/responses``,
``previous_response_id``) lives; it reuses :mod:`vizlab.client.replies` for the
:class:`~vizlab.client.replies.Reply` and :mod:`vizlab.client.errormap` for errors, like
:mod:`vizlab.client.chat` does for Chat Completions.
"""

from __future__ import annotations

from vizlab.client.errormap import ErrorMapping


class ResponsesCalls(ErrorMapping):
    """Mixin: the Responses API calls (``respond``); added by issue 11."""
