"""Shared building blocks of the config models: the frozen base model and common value types."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Callable

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


class Model(BaseModel):
    """Frozen; unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise ValueError("is not an IPv4 network in CIDR notation with its host bits zero; write it like 10.0.0.0/16") from None
    return str(net)


Cidr = Annotated[str, AfterValidator(_cidr)]

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _check_retention(v: int) -> int:
    if v not in RETENTION_DAYS:
        raise ValueError(f"CloudWatch accepts only {', '.join(map(str, RETENTION_DAYS))} days; pick one of those")
    return v


RetentionDays = Annotated[int, AfterValidator(_check_retention)]
"""CloudWatch Logs retention in days: one of the values the service accepts."""

DURATION_PATTERN = r"^(([0-9]+(s|m|h))+|Never)$"
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
"""A Go duration of hours, minutes and seconds (``720h``, ``1h30m``), or ``Never``."""

# Every pattern a config field uses, with the fix in words: error messages never show a pattern
# (tests/test_config.py checks that each pattern in the JSON Schema has its words here).
FORMAT_HINTS: dict[str, str | Callable[[str], str]] = {
    DURATION_PATTERN: "write a duration in hours, minutes and seconds such as 720h, 90m or 1h30m, or Never",
}


def hint(pattern: str, words: str | Callable[[str], str]) -> str:
    """Register the words that explain ``pattern`` to a user (or a function of the refused value
    that returns them); returns the pattern."""
    FORMAT_HINTS[pattern] = words
    return pattern

