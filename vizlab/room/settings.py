"""What a room is set up with: the upstream, the window, budgets, caps and pacing.

One frozen-ish dataclass, checked once on construction, so the routes never meet a bad setting.
Times without an offset are the facilitator's local time (the laptop's clock), and every message
names them with their offset so attendees in another zone still read the right hour.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vizlab import models
from vizlab.errors import ConfigurationError, UnknownModelError
from vizlab.tokens.pricing import default_prices

__all__ = ["DEFAULT_MAX_OUTPUT", "DETAILS", "RoomSettings", "is_loopback", "parse_time"]

# The default output cap (issue 25): without one a reasoning request with no limit reserves its model's
# whole output window: 100,000 tokens for o1 / o3 / o4-mini in vizlab.models, $6.00 on o1, $0.80 on o3.
DEFAULT_MAX_OUTPUT = 4096
DETAILS = ("low", "high")


def parse_time(value: str | datetime, name: str) -> datetime:
    """An ISO 8601 time as an aware datetime; a naive one is this machine's local time.

    >>> parse_time("2026-12-10T09:00+01:00", "--starts").isoformat()
    '2026-12-10T09:00:00+01:00'
    """
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError as e:
            raise ConfigurationError(
                f"{name} {value!r} is not an ISO 8601 time; write it like 2026-12-10T09:00 (local time) "
                "or 2026-12-10T09:00+01:00"
            ) from e
    return moment.astimezone() if moment.tzinfo is None else moment


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name} {value!r} must be a positive number; pass e.g. {name} 100")


@dataclass
class RoomSettings:
    """A room's settings; ``codes`` is where codes.csv goes (the SQLite store sits beside it)."""

    upstream_endpoint: str
    upstream_deployment: str
    codes: Path
    starts: datetime
    ends: datetime
    attendees: int = 0
    budget_usd: float = 1.0
    budget_tokens: int | None = None
    upstream_model: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    max_detail: str | None = None
    max_images: int | None = None
    max_output: int = DEFAULT_MAX_OUTPUT
    tpm: int | None = None
    rpm: int | None = None
    log_prompts: bool = False
    max_wait_s: float = 20.0
    max_body_bytes: int = 32 * 1024 * 1024
    allowed_hosts: tuple[str, ...] = ()
    tls: bool = False
    record: Path | None = None
    replay: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.codes = Path(self.codes)
        self.record = Path(self.record) if self.record else None
        self.replay = Path(self.replay) if self.replay else None
        if self.replay is not None and not Path(self.replay).is_file():
            raise ConfigurationError(f"--replay {self.replay}: no such file; pass a file written by --record")
        self.starts = parse_time(self.starts, "--starts")
        self.ends = parse_time(self.ends, "--ends")
        if self.ends <= self.starts:
            raise ConfigurationError(
                f"--ends {self.ends.isoformat()} is not after --starts {self.starts.isoformat()}; "
                "the room is open between them"
            )
        if not self.upstream_endpoint or not self.upstream_deployment:
            raise ConfigurationError("--upstream-endpoint and --upstream-deployment are both needed")
        if self.upstream_endpoint != "local" and not self.upstream_endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"--upstream-endpoint {self.upstream_endpoint!r} must be 'local' or an https://RES.openai.azure.com URL"
            )
        if isinstance(self.attendees, bool) or not isinstance(self.attendees, int) or self.attendees < 0:
            raise ConfigurationError(f"--attendees {self.attendees!r} must be a whole number, 0 or more")
        _positive("--budget-usd", self.budget_usd, allow_none=False)
        for name, value in (("--budget-tokens", self.budget_tokens), ("--max-images", self.max_images),
                            ("--tpm", self.tpm), ("--rpm", self.rpm)):  # fmt: skip
            _positive(name, value)
        _positive("--max-output", self.max_output, allow_none=False)
        if self.max_detail is not None and self.max_detail not in DETAILS:
            raise ConfigurationError(f"--max-detail {self.max_detail!r} must be one of {', '.join(DETAILS)}")
        if not is_loopback(self.host) and self.attendees < 1:
            raise ConfigurationError(
                f"--host {self.host} binds beyond this machine, which needs attendee codes: pass --attendees N "
                "(N >= 1), or bind 127.0.0.1"
            )
        self.upstream_model = self._model()
        worst = default_prices().cost(0, self.max_output, model=self.upstream_model).total
        if worst > self.budget_usd:
            self.notes.append(
                f"the output cap alone ({self.max_output} tokens, ${worst:.4f} at {self.upstream_model}'s price) is over "
                f"the budget ${self.budget_usd:.4f}: requests without a lower max_tokens will be refused; pass a "
                "smaller --max-output (e.g. 300) or a larger --budget-usd"
            )

    def _model(self) -> str:
        """The registry model to price with: --upstream-model, else the deployment's name, else gpt-4o."""
        name = self.upstream_model or self.upstream_deployment
        try:
            return models.lookup(name).name
        except (UnknownModelError, KeyError):
            if self.upstream_model:
                raise ConfigurationError(
                    f"--upstream-model {self.upstream_model!r} is not in vizlab's registry; pass one of "
                    f"{', '.join(models.families())}"
                ) from None
        self.notes.append(
            f"deployment {self.upstream_deployment!r} does not name a model vizlab knows: budgets are estimated "
            "as gpt-4o (pass --upstream-model NAME to change); settled costs use the model each reply reports"
        )
        return "gpt-4o"

    @property
    def store_path(self) -> Path:
        return self.codes.with_suffix(".sqlite")

    @property
    def cert_paths(self) -> tuple[Path, Path]:
        """(certificate, private key) for --tls, beside codes.csv."""
        return self.codes.with_name(self.codes.stem + "-cert.pem"), self.codes.with_name(self.codes.stem + "-tls-key.pem")

    @property
    def log_path(self) -> Path:
        return self.codes.with_suffix(".log")

    def window_state(self, now: datetime | None = None) -> str:
        """'before', 'open' or 'after'."""
        now = now or datetime.now(timezone.utc)
        if now < self.starts:
            return "before"
        return "after" if now >= self.ends else "open"
