"""Planning a run: the deployments' models, the arms, each request's body, and one job per request.

:func:`plan_run` reads the items, checks every arm against the model registry (images per
request, ``original`` detail, ``reasoning_effort``), encodes each image once per slot to key and
estimate its jobs, and keeps only the images' addresses: the bytes are encoded again when a
request is sent (:class:`Encoder`), so memory stays bounded. Before the first reply a deployment
whose model is unknown gets no estimate ("model unknown"), never a guess. Loopback endpoints
share a cache identity without their port. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vizlab.client.targets import BackendKind
from vizlab.errors import ImageError, redact
from vizlab.experiments.cache import ResultCache
from vizlab.experiments.document_arms import part_for
from vizlab.experiments.inputs import Item, ItemSet, load_items
from vizlab.experiments.scorers import is_builtin_analyst
from vizlab.experiments.spec import Arm, RunSpec, check_effort
from vizlab.experiments.strategies import check_strategy, strategy_images

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.models.types import ModelInfo

__all__ = ["LOCAL_STAMP", "Deployment", "Encoder", "ImageRef", "Job", "Plan", "backend_identity", "estimate_job",
           "messages_of", "plan_run", "slot_of"]

_KEY_VERSION = 2
LOCAL_STAMP = "local analyst (OCR), not a vision model"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def backend_identity(client: Any) -> str:
    """The backend part of a cache key: kind and endpoint, never a key.

    >>> class C: backend, endpoint = "azure", "http://127.0.0.1:51234/"
    >>> backend_identity(C())
    'azure|loopback'
    """
    kind = str(client.backend or "")
    endpoint = str(client.endpoint or "")
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK_HOSTS or host.startswith("127."):
        where = "loopback"
    elif host:  # scheme, host, port and path only: no user info, query or fragment
        netloc = host + (f":{parts.port}" if parts.port else "")
        where = f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"
    else:
        where = endpoint
    return f"{kind}|{where}"


@dataclass(frozen=True)
class ImageRef:
    """What a planned job keeps of an encoded image: its address and sizes, not its bytes."""

    sha256: str
    width: int
    height: int
    original_width: int
    original_height: int


@dataclass
class Job:
    """One request of the grid: an item asked in an arm, the ``repeat``-th time."""

    index: int
    item: Item
    arm: Arm
    repeat: int
    images: list[Any] | None = None
    encode_error: str | None = None
    key: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    estimate: Any = None
    estimated_cost: float | None = None
    pacing_tokens: int = 0


@dataclass
class Deployment:
    """One deployment of the run: its client and what the registry says of the model behind it."""

    name: str
    client: Client
    info: ModelInfo | None
    model_known: bool

    @property
    def token_model(self) -> str | None:
        """The model whose rules estimate this deployment's requests; None while the model is unknown."""
        return str(self.client.token_model) if self.model_known else None

    def relearn(self) -> bool:
        """Take the model a reply taught the client; True when it became known now."""
        if self.model_known or self.client.model_info is None:
            return False
        self.info, self.model_known = self.client.model_info, True
        return True


@dataclass
class Plan:
    """Everything the budget, execute and frame steps need, made once by :func:`plan_run`."""

    client: Client
    spec: RunSpec
    item_set: ItemSet
    deployments: dict[str, Deployment]
    arms: list[Arm]
    bodies: dict[tuple[str, str | None], dict[str, Any]]
    jobs: list[Job]
    cache: ResultCache
    identity: str
    stamp: str | None


def plan_run(client: Client, items: Any, spec: RunSpec) -> Plan:
    """Read the items, check the arms, build each body and every job (keyed and estimated)."""
    item_set = load_items(items, labels=spec.labels, prompt=spec.prompt, scorer=spec.scorer,
                          judges=dict(spec.judges) if spec.judges is not None else None)  # fmt: skip
    names = spec.deployments or (str(client.deployment),)
    deployments = {d: _deployment(client, d) for d in names}
    arms = spec.arms(names)
    _check_arms(arms, deployments, provider="openai" if client.backend == BackendKind.OPENAI else "azure")
    bodies = {(a.deployment, a.reasoning_effort): _body(deployments[a.deployment], spec, a.reasoning_effort)
              for a in arms}  # fmt: skip
    stamp = LOCAL_STAMP if is_builtin_analyst(client) else None
    plan = Plan(client, spec, item_set, deployments, arms, bodies, [], ResultCache(spec.cache_dir),
                backend_identity(client), stamp)  # fmt: skip
    plan.jobs = _jobs(plan)
    return plan


def _deployment(client: Client, name: str) -> Deployment:
    c = client if name == client.deployment else client.with_deployment(name)
    # Where the registry does not apply (an OpenAI-compatible server), the token model is the only word.
    known = c.model_info is not None or not c.registry_applies
    return Deployment(name, c, c.model_info, known)


def _check_arms(arms: list[Arm], deployments: Mapping[str, Deployment], *, provider: str) -> None:
    for arm in arms:
        d = deployments[arm.deployment]
        info = d.info
        check_strategy(arm.strategy, max_images=info.images_per_request(provider) if info is not None else None)
        if arm.detail == "original" and "original" not in (info.image_rule().details if info is not None else ()):
            raise ValueError(f"detail 'original' is not offered by deployment {arm.deployment!r}; drop it from details")
        check_effort(arm, info, model_known=d.model_known and info is not None)


def _body(d: Deployment, spec: RunSpec, effort: str | None) -> dict[str, Any]:
    """The body parameters of one deployment at one effort: max_completion_tokens for reasoning
    models, and a clear refusal of sampling parameters the model would refuse."""
    body: dict[str, Any] = dict(spec.params)
    info = d.info
    if spec.max_tokens is not None:
        body["max_completion_tokens" if info is not None and info.reasoning else "max_tokens"] = spec.max_tokens
    extra = {"temperature": spec.temperature, "seed": spec.seed, "reasoning_effort": effort,
             "response_format": dict(spec.response_format) if spec.response_format is not None else None}  # fmt: skip
    body.update({k: v for k, v in extra.items() if v is not None})
    if info is not None:
        refused = sorted(set(body) & set(info.rejected_params(body.get("reasoning_effort"))))
        if refused:
            raise ValueError(f"deployment {d.name!r} ({info.name}) refuses {', '.join(refused)} at reasoning effort "
                             f"{body.get('reasoning_effort') or info.default_effort!r}; leave them out for this deployment")  # fmt: skip
    return body


def _jobs(plan: Plan) -> list[Job]:
    """Encode once per (item, strategy, detail-class), key and estimate every job."""
    jobs: list[Job] = []
    spec = plan.spec
    for item in plan.item_set.items:
        encoded: dict[tuple[str, str, str], tuple[list[Any] | None, str | None]] = {}
        for arm in plan.arms:
            slot = slot_of(item, arm)
            if slot not in encoded:
                encoded[slot] = _encode(item, arm)
            images, error = encoded[slot]
            for r in range(spec.repeats):
                job = Job(len(jobs), item, arm, r, images, error, body=plan.bodies[arm.deployment, arm.reasoning_effort])
                if images is not None:
                    job.key = _key(job, plan.identity, spec.system)
                    estimate_job(job, spec.system, plan.deployments[arm.deployment].token_model)
                    job.images = [ImageRef(i.sha256, i.width, i.height, i.original_width, i.original_height)
                                  for i in images]  # fmt: skip
                jobs.append(job)
    return jobs


def _encode(item: Item, arm: Arm) -> tuple[list[Any] | None, str | None]:
    try:
        return strategy_images(item.image, arm.strategy, arm.detail, name=item.id), None
    except Exception as e:  # a bad image is a row, not the end of the run
        return None, redact(f"{type(e).__name__}: {e}")


def _key(job: Job, identity: str, system: str | None) -> str:
    canonical = json.dumps(
        {
            "v": _KEY_VERSION,
            "images": [img.sha256 for img in job.images or []],
            "question": job.item.question,
            "system": system,
            "deployment": job.arm.deployment,
            "detail": job.arm.detail,
            "strategy": job.arm.strategy,
            "repeat": job.repeat,
            "params": job.body,  # the reasoning effort is in the body
            "backend": identity,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def slot_of(item: Item, arm: Arm) -> tuple[str, str, str]:
    """Jobs of one slot send the same encoded images (fit depends only on low versus high)."""
    mode = "low" if arm.detail == "low" else "high"
    return item.id, arm.strategy, mode if arm.strategy == "fit" else ""


def messages_of(job: Job, system: str | None, images: list[Any] | None = None) -> list[dict[str, Any]]:
    """The request's messages; ``images``: the job's encoded images (default: ``job.images``)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": job.item.question}]
    content += [part_for(img, job.arm.detail) for img in (job.images if images is None else images) or []]
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": content}]


def estimate_job(job: Job, system: str | None, token_model: str | None, images: list[Any] | None = None) -> None:
    """The job's estimate (its output bound counted in full: reasoning tokens live inside it) and
    pacing cost; no estimate while the deployment's model is unknown (``token_model`` None).
    ``images``: the encoded images, once the plan has kept only their addresses."""
    from vizlab.tokens.request import estimate_request

    out = job.body.get("max_tokens", job.body.get("max_completion_tokens"))
    job.estimate, job.estimated_cost, job.pacing_tokens = None, None, 1000 + (out or 0)
    if token_model is None:
        return
    try:
        job.estimate = estimate_request(messages_of(job, system, images), model=token_model, max_tokens=out)
    except Exception:  # an estimate is a nicety; the request may still be accepted
        return
    cost = job.estimate.cost
    job.estimated_cost = float(cost.total) if cost is not None else None
    job.pacing_tokens = job.estimate.prompt_tokens + (out or 0)


class Encoder:
    """Encodes a job's images when its request is sent, not for the whole run: the run's memory
    stays bounded by the few most recent slots (a run's jobs come item by item, so the arms of
    one item reuse one encoding). The bytes must hash to what the cache key was planned with."""

    def __init__(self, keep: int) -> None:
        self._recent: OrderedDict[tuple[str, str, str], list[Any]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def images(self, job: Job) -> list[Any]:
        slot = slot_of(job.item, job.arm)
        with self._lock:
            found = self._recent.get(slot)
            if found is not None:
                self._recent.move_to_end(slot)
                return found
        images = strategy_images(job.item.image, job.arm.strategy, job.arm.detail, name=job.item.id)
        if [img.sha256 for img in images] != [ref.sha256 for ref in job.images or []]:
            raise ImageError(f"item {job.item.id!r}: its image changed on disk during the run (its bytes no longer "
                             "match the ones planned and estimated); run the experiment again")  # fmt: skip
        with self._lock:
            self._recent[slot] = images
            while len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return images
