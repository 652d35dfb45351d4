"""The TTL rule, in one place for training sets and online lookups, so that a model is served what it was
trained on.

A view's value with event time ``e`` may be used at time ``t`` while ``t - e <= ttl``: a value exactly the
TTL old still counts, one a microsecond older is null. A training set applies it at each row's label time
(:func:`fresh_sql`, inside the DuckDB point-in-time join); an online lookup at the request's time, or now
(:func:`fresh`); the Redis online store also lets Redis delete a value once it can no longer be used
(:func:`expires_at_ms`), and lookups still check, for clock skew and values written before it did.
"""

from __future__ import annotations

from datetime import timedelta

#: Microseconds per second, for TTLs that definitions record in seconds (``ttl_s``).
_US = 1_000_000


def ttl_micros(ttl: timedelta | float | None) -> int | None:
    """A TTL in whole microseconds: from a ``timedelta`` (a view's ``ttl``) or seconds (a recorded
    definition's ``ttl_s``); None for no TTL."""
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        return ttl // timedelta(microseconds=1)
    return round(float(ttl) * _US)


def fresh(event_us: int, at_us: int, ttl_us: int | None) -> bool:
    """Whether a value with event time ``event_us`` may be used at ``at_us`` (µs since the epoch)."""
    return ttl_us is None or at_us - event_us <= ttl_us


def fresh_sql(event: str, at: str, ttl_us: int) -> str:
    """:func:`fresh` as a DuckDB condition on two TIMESTAMPTZ expressions (null when ``event`` is null)."""
    return f"epoch_us({at}) - epoch_us({event}) <= {int(ttl_us)}"


def expires_at_ms(event_us: int, ttl_us: int) -> int:
    """When a store may delete the value (ms since the epoch, for Redis ``PXAT``): the first whole
    millisecond at or after its last fresh instant. Redis deletes a key once that time has *passed*, so no
    usable value is lost; at least 1, since a value expired before 1970 is expired now too."""
    return max(1, -(-(event_us + ttl_us) // 1000))
