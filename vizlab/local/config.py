"""Settings of one local backend (:class:`BackendConfig`) and its default deployments.

Light on purpose: a kernel that only talks to the shared backend imports this (to check its
settings and name the default deployment) and nothing of the server; the state the routes share
is in :mod:`vizlab.local.state`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from vizlab.local import _deps
from vizlab.models.registry import default_local_model, canonical_name, families, lookup
from vizlab.models.types import RULE_PROFILES, ModelInfo
from vizlab.models.versions import VERSIONS, azure_version

__all__ = ["BackendConfig", "OCR_PAGE_CAP", "DEFAULT_MAX_CONCURRENCY", "MODEL_VERSIONS", "DEFAULT_DEPLOYMENT",
           "DEFAULT_DEPLOYMENTS", "DEFAULT_RULE_DATE"]

DEFAULT_MAX_CONCURRENCY = 32
# Pages without a text layer the analyst OCRs per request: vizlab's choice (a dense page costs seconds
# of OCR; vizlab.local.replies.document_answers). BackendConfig.ocr_page_cap overrides it.
OCR_PAGE_CAP = 5

# The default deployment: a current vision reasoning model a room can deploy, by the registry's
# stated rule (vizlab.models.DEFAULT_LOCAL_RULE) evaluated on a fixed date, so the committed
# notebooks do not change under a later retirement date. Re-evaluate it when the registry changes.
DEFAULT_RULE_DATE = "2026-12-07"
DEFAULT_DEPLOYMENT = default_local_model(today=DEFAULT_RULE_DATE)
# Served unless told otherwise: the default first, then a current model of each family the docs and
# notebooks use (gpt-4o and gpt-4o-mini also for the history notebook 14 tells). Any registry model
# is servable by name with --deployment NAME.
DEFAULT_DEPLOYMENTS = tuple(dict.fromkeys(
    (DEFAULT_DEPLOYMENT, "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5.4", "gpt-5.4-mini")
))

# The dated model name a response's `model` field carries, as the service reports the version a
# deployment runs ("gpt-5-mini-2025-08-07"): the registry's published Azure versions, each with its
# source (vizlab.models.versions). A family with no published version is reported by its name.
MODEL_VERSIONS: Mapping[str, str] = MappingProxyType({
    family: version for family in VERSIONS if (version := azure_version(family)) is not None
})


@dataclass
class BackendConfig:
    """Settings of one local backend. ``api_key=None`` accepts any non-empty key.

    ``deployments`` entries are ``"NAME"`` or ``"NAME=MODEL"`` (MODEL a registry family, alias or
    dated snapshot: ``"reasoner=o4-mini"``); a bare NAME is counted by its own name's rules when
    the registry knows it, else as :attr:`token_model` (gpt-4o-class). ``deployment_models`` is
    the same mapping given directly.

    Billing, for calibration against a backend whose rules are known: ``billing_rules`` names a
    rule profile of the registry (``"2025-08"``, ``"azure-2023-preview"``; None: the newest), and
    ``billing_numbers`` replaces the image rule's numbers with made-up ones
    (``{"base": 70, "per_tile": 150}`` on tile models, ``{"multiplier": 1.3}`` on patch models).
    """

    api_key: str | None = field(default=None, repr=False)  # a key never shows in a repr
    deployments: tuple[str, ...] = DEFAULT_DEPLOYMENTS
    deployment_models: Mapping[str, str] = field(default_factory=dict)
    billing_rules: str | None = None
    billing_numbers: Mapping[str, float] | None = None
    # Prompt-cache retention, idle seconds: the shortest of the documented in-memory retention
    # ("5-10 minutes of inactivity", OpenAI 'Prompt caching' guide, via vizlab.models, 2026 copy).
    prompt_cache_ttl_s: float = 300.0
    # Model whose token rules produce usage on deployments not named after a known model
    # (see token_model_for).
    token_model: str = "gpt-4o"
    latency_s: float = 0.0  # simulated extra latency per request, before the answer
    rpm: int | None = None  # requests-per-minute quota
    tpm: int | None = None  # tokens-per-minute quota (prompt estimate + max_tokens)
    # Azure seeds (03, 2024-08-21): "When uploading images, there is a limit of 10 images per chat request."
    max_images: int = 10
    # OpenAI vision guide (checked 2025): "up to 20MB per image".
    max_image_bytes: int = 20 * 1024 * 1024
    model_name: str = "vizlab-local-analyst"
    # Extras beyond the published API: window of the RPM/TPM quotas (tests shorten it), pause
    # between streamed chunks (so streaming is visible), and the largest body accepted.
    # 60 s: the "per minute" of RPM/TPM. Azure itself resets its TPM count every minute but checks
    # RPM over 1- or 10-s slices ("Understanding rate limits", Azure OpenAI quotas page, as quoted in
    # Microsoft Q&A 1336515, 2023-08, and MicrosoftDocs/azure-docs commit 3d19c32); one 60-s sliding
    # window for both is vizlab's simplification: a burst the service would refuse may pass here.
    rate_window_s: float = 60.0
    stream_chunk_delay_s: float = 0.01
    max_body_bytes: int | None = None  # None: room for max_images images of max_image_bytes
    # Pause between the lines of a batch (vizlab.local.replies.batch_store), so progress shows and tests can
    # restart a client mid-run.
    batch_delay_s: float = 0.0
    # Pacing (vizlab.local.http.gateway): at most this many chat/responses requests in flight at once;
    # one more is answered 429 with retry-after and retry-after-ms, as Azure answers overload,
    # instead of queueing without bound. None: no limit (the RPM/TPM quotas still apply).
    # 32: vizlab's choice, 8x what one notebook sends at once (a grid's concurrency=4, a
    # ComparePanel's one request per column), so several kernels sharing the backend see no 429.
    max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY
    # Host header values accepted besides loopback addresses and "localhost" (DNS-rebinding guard,
    # vizlab.local.http.gateway), e.g. ("myhost.internal",) behind a proxy. Compared without the port.
    allowed_hosts: tuple[str, ...] = ()
    # Seconds a connection may take to send a request's complete headers before it is closed
    # (slowloris guard, vizlab.local.http.protocol.HeaderTimeoutH11Protocol).
    header_timeout_s: float = 10.0
    # Seconds a request body may send nothing before the connection is closed (stalled-body guard,
    # same module). vizlab's choice, as the header timeout: a 20 MB image on loopback never stalls 10 s.
    body_timeout_s: float = 10.0
    # Pages without a text layer the analyst OCRs per request (vizlab.local.requests.documents).
    ocr_page_cap: int = OCR_PAGE_CAP

    def __post_init__(self) -> None:
        if isinstance(self.deployments, str):
            self.deployments = (self.deployments,)
        self.deployments, self.deployment_models = _split_deployments(self.deployments, self.deployment_models)
        self._check_billing()
        if not self.deployments:
            raise ValueError("BackendConfig.deployments must name at least one deployment, e.g. ('gpt-4o',)")
        if self.api_key is not None and not self.api_key:
            raise ValueError("BackendConfig.api_key must be None (accept any key) or a non-empty string")
        if not all(isinstance(d, str) and d for d in self.deployments):
            raise ValueError(f"BackendConfig.deployments must be non-empty strings, got {list(self.deployments)!r:.80}")
        for name in ("rpm", "tpm", "max_concurrency"):
            _check_count(name, getattr(self, name), optional=True)
        self.allowed_hosts = _checked_hosts(self.allowed_hosts)
        for name in ("header_timeout_s", "body_timeout_s"):
            _check_seconds(name, getattr(self, name), positive=True)
        for name in ("latency_s", "stream_chunk_delay_s", "batch_delay_s"):
            _check_seconds(name, getattr(self, name), positive=False)
        _check_seconds("rate_window_s", self.rate_window_s, positive=True)
        for name in ("max_images", "max_image_bytes"):
            _check_count(name, getattr(self, name), optional=False)
        if isinstance(self.ocr_page_cap, bool) or not isinstance(self.ocr_page_cap, int) or self.ocr_page_cap < 0:
            raise ValueError(f"BackendConfig.ocr_page_cap must be a whole number >= 0, got {self.ocr_page_cap!r}")

    def token_model_for(self, deployment: str) -> str:
        """The model whose token rules count usage on ``deployment``: the deployment's own name
        when vizlab.tokens has a rule for it (``gpt-4o-mini``, ``gpt-4o-2024-08-06``...), as a
        deployment named after its model is on Azure; else :attr:`token_model`.

        >>> BackendConfig(deployments=("gpt-4o-mini", "team-a")).token_model_for("gpt-4o-mini")
        'gpt-4o-mini'
        >>> BackendConfig(token_model="gpt-4.1").token_model_for("team-a")
        'gpt-4.1'
        """
        mapped = self.deployment_models.get(deployment)
        if mapped is not None and _deps.has_token_rule(mapped):
            return mapped
        return deployment if _deps.has_token_rule(deployment) else self.token_model

    def model_for(self, deployment: str) -> str:
        """The registry model behind ``deployment``: its NAME=MODEL, else the deployment's own
        name when the registry knows it, else as :meth:`token_model_for`. (Tokens are counted by
        :meth:`token_model_for`: this model whenever vizlab.tokens has rules for it.)

        >>> BackendConfig(deployments=("reasoner=o4-mini",)).model_for("reasoner")
        'o4-mini'
        """
        mapped = self.deployment_models.get(deployment)
        if mapped is not None:
            return mapped
        return deployment if canonical_name(deployment) is not None else self.token_model_for(deployment)

    def reported_model(self, deployment: str) -> str:
        """The ``model`` a response names for ``deployment``: its registry model, dated as the
        service reports it (the analyst that answers is named in ``x-vizlab-analyst``).

        >>> BackendConfig(deployments=("reasoner=gpt-5.4",)).reported_model("reasoner")
        'gpt-5.4-2026-03-05'
        """
        name = self.model_for(deployment)
        family = canonical_name(name)
        if family is None or family != name.strip().lower():
            return name  # already dated, or not in the registry: as given
        version = MODEL_VERSIONS.get(family)
        return f"{family}-{version}" if version else family

    def model_info(self, deployment: str) -> ModelInfo | None:
        """The registry entry of :meth:`model_for`, or None for a model it does not know."""
        name = self.model_for(deployment)
        return lookup(name) if canonical_name(name) is not None else None

    def _check_billing(self) -> None:
        if self.billing_rules is not None and self.billing_rules not in RULE_PROFILES:
            raise ValueError(
                f"BackendConfig.billing_rules={self.billing_rules!r} is not a rule profile; use one of "
                f"{', '.join(RULE_PROFILES)} (or None for the newest)"
            )
        if self.billing_numbers is not None:
            numbers = dict(self.billing_numbers)
            allowed = {"base", "per_tile", "multiplier"}
            bad = sorted(k for k in numbers if k not in allowed)
            if bad or not numbers or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf for v in numbers.values()
            ):
                raise ValueError(
                    f"BackendConfig.billing_numbers={numbers!r} must map some of {sorted(allowed)} to numbers >= 0, "
                    "e.g. {'base': 70, 'per_tile': 150}"
                )
            self.billing_numbers = numbers

    @property
    def body_limit(self) -> int:
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        # base64 grows data by 4/3; allow 1 MiB of text and JSON around the images.
        return math.ceil(self.max_images * self.max_image_bytes * 4 / 3) + 1024 * 1024



def _check_count(name: str, value: Any, *, optional: bool) -> None:
    """A whole number >= 1 (or None when ``optional``), else the ValueError naming the field."""
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        allowed = "None or a whole number >= 1" if optional else "a whole number >= 1"
        raise ValueError(f"BackendConfig.{name} must be {allowed}, got {value!r}")


def _check_seconds(name: str, value: Any, *, positive: bool) -> None:
    """A finite number of seconds, > 0 when ``positive`` (else >= 0), else the ValueError naming the field."""
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if positive and not (number and 0 < value < math.inf):
        raise ValueError(f"BackendConfig.{name} must be a positive number of seconds, got {value!r}")
    if not positive and not (number and 0 <= value < math.inf):
        raise ValueError(f"BackendConfig.{name} must be a number of seconds >= 0, got {value!r}")


def _checked_hosts(hosts: Any) -> tuple[str, ...]:
    """``allowed_hosts`` as a tuple of host names without a port (a single string is one name)."""
    hosts = (hosts,) if isinstance(hosts, str) else tuple(hosts)
    if not all(isinstance(h, str) and h and (h.startswith("[") or ":" not in h) for h in hosts):
        raise ValueError(
            f"BackendConfig.allowed_hosts must be host names without a port, e.g. ('myhost.internal',), "
            f"got {list(hosts)!r:.80}"
        )
    return hosts


def _split_deployments(entries: Any, mapping: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """``("a", "r=o4-mini")`` -> ``(("a", "r"), {"r": "o4-mini"})``, names and models checked."""
    names: list[str] = []
    models_of: dict[str, str] = {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"BackendConfig.deployment_models must map deployment names to models, got {mapping!r:.80}")
    for entry in tuple(entries):
        if not isinstance(entry, str) or not entry.strip() or entry.strip().startswith("="):
            raise ValueError(f"BackendConfig.deployments must be non-empty strings, got {list(entries)!r:.80}")
        name, sep, model = entry.partition("=")
        name = name.strip()
        if sep:
            models_of[name] = model.strip()
        if name not in names:
            names.append(name)
    for name, model in dict(mapping).items():
        if not isinstance(name, str) or not isinstance(model, str):
            raise ValueError(f"BackendConfig.deployment_models must map names to model names, got {mapping!r:.80}")
        models_of.setdefault(name, model)
        if name not in names:
            names.append(name)
    for name, model in models_of.items():
        if canonical_name(model) is None:
            raise ValueError(
                f"deployment {name!r}: model {model!r} is not in vizlab's registry; use one of "
                f"{', '.join(families())} (NAME=MODEL, e.g. reasoner=o4-mini)"
            )
    return tuple(names), models_of
