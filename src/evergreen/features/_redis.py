"""The Redis online store (``pip install "evergreen[redis]"``): one string key per (view key, entity).

A value is the event time as 20 zero-padded digits (microseconds since the epoch, offset so that times
before 1970 stay positive) followed by the features as JSON; the digits compare as text in the same
order as the times, so a small Lua script keeps the newest row per key on the server in one round trip
per chunk of rows. A lookup of any number of entities is one ``MGET``. A value of a view with a TTL is
set with an expiry (``PXAT``, see ``_ttl.py``), so Redis deletes it once it is too old to be used, and
memory holds only values that can still be served.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from evergreen.errors import FeatureError, MissingDependencyError

from ._online import OnlineRow, OnlineStore
from ._ttl import expires_at_ms

#: Added to event times (µs) so that the 20-digit prefix is never negative (any time after year -1200).
_OFFSET = 10**17
_PREFIX_LEN = 20
_CHUNK = 1000
#: For each KEYS[i], set ARGV[i] unless the stored value's time prefix is newer; with ARGV[n + i] (ms since
#: the epoch) as its expiry when that is not empty.
_KEEP_NEWEST = """
local n = #KEYS
for i, key in ipairs(KEYS) do
  local new = ARGV[i]
  local old = redis.call('GET', key)
  if (not old) or string.sub(old, 1, 20) <= string.sub(new, 1, 20) then
    local expires = ARGV[n + i]
    if expires == '' then
      redis.call('SET', key, new)
    else
      redis.call('SET', key, new, 'PXAT', expires)
    end
  end
end
return n
"""


class RedisOnlineStore(OnlineStore):
    """The online store in a Redis database; keys ``evergreen:features:{view key}:{entity id}``."""

    def __init__(self, url: str, *, prefix: str = "evergreen:features:") -> None:
        try:
            import redis
        except ImportError as e:
            raise MissingDependencyError(
                f'the online store {url!r} needs the Redis client: pip install "evergreen[redis]" ({e})'
            ) from e
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.url = url
        self.prefix = prefix
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=10.0, socket_connect_timeout=5.0)
            self._client.ping()
            self._script = self._client.register_script(_KEEP_NEWEST)
        except (redis.RedisError, ValueError) as e:
            raise FeatureError(
                f"online store {url}: cannot reach Redis ({e}); check that the server runs and "
                "features.online_store in evergreen.toml"
            ) from e

    def _key(self, view_key: str, entity: str) -> str:
        return f"{self.prefix}{view_key}:{entity}"

    def write(
        self, view_key: str, rows: Iterable[tuple[str, int, dict[str, Any]]], *, ttl_us: int | None = None
    ) -> int:
        keys: list[str] = []
        values: list[bytes] = []
        expiries: list[bytes] = []
        written = 0
        try:
            for entity, event_us, features in rows:
                keys.append(self._key(view_key, entity))
                values.append(b"%020d" % (event_us + _OFFSET) + orjson.dumps(features))
                expiries.append(b"" if ttl_us is None else b"%d" % expires_at_ms(event_us, ttl_us))
                if len(keys) == _CHUNK:
                    written += int(self._script(keys=keys, args=values + expiries))
                    keys, values, expiries = [], [], []
            if keys:
                written += int(self._script(keys=keys, args=values + expiries))
        except self._errors as e:
            raise FeatureError(f"online store {self.url}: writing {view_key!r} failed: {e}") from e
        return written

    def read(self, view_key: str, entity_ids: Sequence[str]) -> list[OnlineRow | None]:
        try:
            found: list[Any] = self._client.mget([self._key(view_key, e) for e in entity_ids])
        except self._errors as e:
            raise FeatureError(f"online store {self.url}: reading {view_key!r} failed: {e}") from e
        return [None if v is None else (int(v[:_PREFIX_LEN]) - _OFFSET, orjson.loads(v[_PREFIX_LEN:])) for v in found]

    def _keys(self, view_key: str) -> list[bytes]:
        pattern = self._key(view_key, "*").replace("[", "\\[").replace("?", "\\?")
        return list(self._client.scan_iter(match=pattern, count=1000))

    def drop(self, view_key: str) -> int:
        try:
            keys = self._keys(view_key)
            for start in range(0, len(keys), _CHUNK):
                self._client.delete(*keys[start : start + _CHUNK])
        except self._errors as e:
            raise FeatureError(f"online store {self.url}: dropping {view_key!r} failed: {e}") from e
        return len(keys)

    def count(self, view_key: str) -> int:
        try:
            return len(self._keys(view_key))
        except self._errors as e:
            raise FeatureError(f"online store {self.url}: counting {view_key!r} failed: {e}") from e

    def close(self) -> None:
        self._client.close()
