"""When to re-check a domain: exponential backoff with jitter, capped."""

from __future__ import annotations

import random
from collections.abc import Callable


def recheck_delay(
    attempt: int,
    *,
    base: float = 5.0,
    cap: float = 600.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before re-check number `attempt` (0 for the first).

    Equal jitter: half of the capped exponential step is fixed, half random,
    so checks of many portals spread out yet never come back too soon.
    `rand` returns a float in [0, 1); pass a fixed one for a deterministic
    schedule.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # min() before the power would still overflow for huge attempts; clamp the exponent.
    step = min(cap, base * 2.0 ** min(attempt, 64))
    return step / 2 + step / 2 * rand()
