"""What a :class:`~vizlab.client.core.Client` knows of the model behind its deployment.

The model is learned in order: ``connect(model=)``, ``AZURE_OPENAI_MODEL``, the built-in backend's
own mapping, the deployment's name when the registry knows it, ``connect(token_model=)``, and later
the model each response reports. Until then it is unknown, and :attr:`ModelState.model_note`
says so and names the token rules any estimate assumes. Refused parameters are adapted per
deployment (:mod:`vizlab.client.adapt`); the record of them is shared by every deployment's state.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from vizlab import errors
from vizlab.client.adapt import (
    ParameterAdaptedWarning,
    adaptation_for,
    apply_adaptations,
    describe_adaptation,
)
from vizlab.client.params import applies_registry, model_info_for
from vizlab.client.targets import Target
from vizlab.models.types import ModelInfo

__all__ = ["ModelState", "FIRM_SOURCES"]

# Sources that name the model itself; "deployment name" is a guess a reply may still correct.
FIRM_SOURCES = ("connect(model=)", "AZURE_OPENAI_MODEL", "built-in backend", "reported", "connect(token_model=)")


class ModelState:
    """The deployment, its model (registry entry and source), the token rules, the adaptations."""

    def __init__(
        self,
        target: Target,
        deployment: str,
        *,
        token_model: str,
        token_model_given: bool = False,
        adaptations: dict[str, dict[str, str | None]] | None = None,
        warned: set[tuple[str, str]] | None = None,
    ) -> None:
        self.target = target
        self.deployment = deployment
        self.token_model = token_model
        self.token_model_given = token_model_given
        self.token_rules: str | None = None  # a rule profile for estimates (vizlab.calibrate sets it)
        self.registry_applies: bool = applies_registry(target.backend, target.endpoint)
        self.adaptations: dict[str, dict[str, str | None]] = {} if adaptations is None else adaptations
        self.warned: set[tuple[str, str]] = set() if warned is None else warned
        self.model_info: ModelInfo | None = None
        self.model_source: str | None = None
        self.set_model()

    def for_deployment(self, name: str, *, token_model: str, token_model_given: bool) -> ModelState:
        """The state of deployment ``name`` on the same target (adaptations and token rules shared)."""
        other = ModelState(
            self.target, name, token_model=token_model, token_model_given=token_model_given,
            adaptations=self.adaptations, warned=self.warned,
        )
        other.token_rules = self.token_rules
        return other

    # -- the model --

    def set_model(self) -> None:
        """Learn the deployment's model from what was given (see the module docstring)."""
        local, deployment = self.target.local, self.deployment
        candidates: list[tuple[str | None, str]] = []
        if local is not None:
            model_for = getattr(local.config, "model_for", None)
            candidates.append((model_for(deployment) if callable(model_for) else None, "built-in backend"))
        elif deployment == self.target.deployment and self.target.model:
            candidates.append((self.target.model, self.target.model_source or "connect(model=)"))
        candidates.append((deployment, "deployment name"))
        if self.token_model_given:
            candidates.append((self.token_model, "connect(token_model=)"))
        self.model_info, self.model_source = None, None
        for name, source in candidates:
            info = model_info_for([name])
            if info is not None:
                self.model_info, self.model_source = info, source
                return

    def learn_model(self, reported: object) -> None:
        """Take the model a response reports (``gpt-5-mini-2025-08-07``) when nothing stronger
        named it: its parameter rules and, unless ``token_model=`` was given, its token rules."""
        from vizlab.models.registry import canonical_name, lookup, snapshots

        if not isinstance(reported, str) or self.model_source not in (None, "deployment name"):
            return
        if canonical_name(reported) is None:
            return
        info = lookup(reported)
        if self.model_info is not None and self.model_info.name == info.name and self.model_source == "reported":
            return
        self.model_info, self.model_source = info, "reported"
        if not self.token_model_given:
            name = reported.strip().lower()
            self.token_model = name if name in snapshots() else info.name

    @property
    def waits_for_reply(self) -> bool:
        """True when no estimate is made before the first reply names the model (Azure and OpenAI
        with an unknown model; an OpenAI-compatible server is estimated by an assumed rule)."""
        return self.model_info is None and self.registry_applies and self.target.local is None

    @property
    def model_note(self) -> str:
        """'' when a stated source names the model; else one line saying the model is unknown (or
        guessed from the deployment's name) and which token rules estimates assume, if any."""
        dep = self.deployment
        how = "name it with connect(model=...) or AZURE_OPENAI_MODEL"
        if self.model_info is not None and self.model_source in FIRM_SOURCES:
            return ""
        if self.model_info is not None:  # the deployment's name is a model name the registry knows
            return (
                f"model assumed: deployment {dep} is taken to run {self.model_info.name} (its name) until a reply "
                f"names the model; {how} to be sure"
            )
        if self.waits_for_reply:
            return (
                f"model unknown: deployment {dep} names no model vizlab knows, so there is no estimate until the "
                f"first reply names it (no assumption made); {how} to estimate before sending"
            )
        return (
            f"model unknown: {dep} is not in vizlab's registry; estimates assume {self.token_model}'s token "
            f"rules and prices (an assumption); pass connect(token_model=...) to choose the rules"
        )

    def lifecycle_note(self) -> str:
        """The model's lifecycle and retirement date when the registry states one, else ''.

        e.g. ``"model o1-mini: deprecated, retires 2025-10-27"``
        """
        info = self.model_info
        if info is None:
            return ""
        parts = [] if info.lifecycle == "generally-available" else [info.lifecycle]
        if info.retires:
            parts.append(f"retires {info.retires}")
        return f"model {info.name}: {', '.join(parts)}" if parts else ""

    # -- adapting to a refused parameter (vizlab.client.adapt) --

    def adapted(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` with the changes this deployment needed before (none: a plain copy)."""
        return apply_adaptations(body, self.adaptations.get(self.deployment, {}))

    def adapt(self, body: Mapping[str, Any], error: errors.VizlabError, *, stacklevel: int = 2) -> dict[str, Any] | None:
        """The body to retry once after ``error`` (the service's unsupported_parameter /
        unsupported_value 400), remembered for this deployment and said once; None: no retry."""
        if not isinstance(error, errors.UnsupportedParameterError):
            return None
        change = adaptation_for(body, error.param)
        if change is None:
            return None
        param, replacement = change
        self.adaptations.setdefault(self.deployment, {})[param] = replacement
        if (self.deployment, param) not in self.warned:
            self.warned.add((self.deployment, param))
            code = str(getattr(error, "code", None) or "unsupported_parameter")
            warnings.warn(describe_adaptation(self.deployment, param, replacement, code), ParameterAdaptedWarning,
                          stacklevel=stacklevel)  # fmt: skip
        return self.adapted(body)
