"""Tokens and cost, offline, by the registry's rules: images, text, whole requests, usage, prices.

Submodules: :mod:`.image` (tile and patch rules), :mod:`.text` (tiktoken encodings built offline),
:mod:`.request` (request estimates for both APIs), :mod:`.usage` (what the service reported),
:mod:`.pricing` (dated, sourced prices).
"""

from __future__ import annotations

from vizlab.tokens.image import (
    AUTO_POLICIES,
    AUTO_POLICY,
    DETAILS,
    ImageTokenBreakdown,
    explain_image_tokens,
    image_token_bound,
    image_tokens,
    known_models,
    match_model,
    register_model,
    resolve_detail,
    rule_for,
    scale_for_high,
    set_auto_policy,
)
from vizlab.tokens.pricing import PriceTable, default_prices
from vizlab.tokens.request import (
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    RequestEstimate,
    estimate_request,
)
from vizlab.tokens.text import count_text_tokens, encoding_for, encoding_name_for
from vizlab.tokens.tools import render_functions, render_schema
from vizlab.tokens.usage import Usage

__all__ = [
    "AUTO_POLICY",
    "AUTO_POLICIES",
    "DETAILS",
    "register_model",
    "known_models",
    "match_model",
    "rule_for",
    "encoding_name_for",
    "set_auto_policy",
    "scale_for_high",
    "resolve_detail",
    "image_tokens",
    "image_token_bound",
    "ImageTokenBreakdown",
    "explain_image_tokens",
    "encoding_for",
    "count_text_tokens",
    "Usage",
    "RequestEstimate",
    "estimate_request",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "REPLY_PRIMING_TOKENS",
    "PriceTable",
    "default_prices",
    "render_functions",
    "render_schema",
]
