"""One person, one conversation, whatever ids a platform gives them (WhatsApp today).

A WhatsApp webhook names its sender by a phone number (`wa_id`), a business-scoped user id
(BSUID, `user_id`), a parent BSUID, or several of them, and the set changes over time: a user who
adopts a username hides their phone, a new phone brings a new BSUID (`system`
`user_changed_user_id` / `user_changed_number` link the old id to the new). The identity map
folds them into one *canonical* id, which becomes the conversation key's chat and user id and the
message's sender id, so the person has one history, one language, one rate-limit bucket and one
block-list entry.

    sealion:ids:{platform}               hash: identifier -> canonical id
    sealion:ids:{platform}:{canonical}   set: every identifier of that person (the canonical too)

Both are personal data with no TTL (like the block list): `storage.erasure` deletes them.

The canonical is the id the map already knows (the first in the order given: BSUID, parent BSUID,
phone); for a person it has never seen, the id the conversation was keyed by before the map
existed when that conversation still has a history in Redis (the migration: a phone-keyed
conversation keeps its history when the person first arrives with a BSUID), else the first id
given (the BSUID when there is one). When one event shows that two canonicals are one person,
the first found wins and the other's aliases are re-pointed to it; the other's Redis history
stays where it was and expires by its TTL (the console and erasure still find it: its id is an
alias of the winner).

One script (`_RESOLVE`), on the webhook's accept path, not in the worker's turn: in the steady
state it runs a single HMGET; a first contact adds EXISTS, HSET and SADD. The script builds the
alias-set key from KEYS[1] (one Redis, not a Cluster: the service never runs on one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis
import redis.asyncio

from bot.kernel.messages import InboundMessage, MessageKind, Platform
from storage.keys import KeyBuilder

# KEYS: the identifier hash, the probe (the history key of the message's legacy conversation;
# the hash again when there is none).
# ARGV: the legacy id ('' when none), then the identifiers, first preferred ('' for absent).
_RESOLVE = """
local ids = {}
for i = 2, #ARGV do if ARGV[i] ~= '' then ids[#ids + 1] = ARGV[i] end end
if #ids == 0 then return '' end
local found = redis.call('HMGET', KEYS[1], unpack(ids))
local canonical = false
for i = 1, #ids do if found[i] then canonical = found[i]; break end end
if canonical then
  local same = true
  for i = 1, #ids do if found[i] ~= canonical then same = false; break end end
  if same then return canonical end
elseif ARGV[1] ~= '' and KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  canonical = ARGV[1]
else
  canonical = ids[1]
end
local set = KEYS[1] .. ':' .. canonical
for i = 1, #ids do
  local old = found[i]
  if old ~= canonical then
    if old then
      local other = KEYS[1] .. ':' .. old
      for _, alias in ipairs(redis.call('SMEMBERS', other)) do
        redis.call('HSET', KEYS[1], alias, canonical)
        redis.call('SADD', set, alias)
      end
      redis.call('DEL', other)
    end
    redis.call('HSET', KEYS[1], ids[i], canonical)
    redis.call('SADD', set, ids[i], canonical)
  end
end
return canonical
"""


class _Resolve:
    """The script's keys and arguments, shared by the blocking and the asyncio map."""

    def __init__(self, keys: KeyBuilder | None) -> None:
        self._keys = keys or KeyBuilder()

    def _resolve_call(self, message: InboundMessage) -> tuple[list[str], list[str]]:
        key = message.key
        table = self._keys.identities(key.platform)
        if message.kind is MessageKind.IDENTITY:
            # A link: the previous ids first (the person as the map knows them), then the new.
            return [table, table], ["", *message.previous_identities, *message.identities]
        legacy = key.user_id if key.user_id in message.identities else ""
        probe = self._keys.history(key) if legacy else table
        return [table, probe], [legacy, *message.identities]

    def _rekeyed(self, message: InboundMessage, canonical: Any) -> InboundMessage:
        person = canonical.decode() if isinstance(canonical, bytes) else str(canonical or "")
        if not person or person == message.key.user_id == message.sender_id:
            return message
        key = message.key.model_copy(update={"chat_id": person, "user_id": person})
        return message.model_copy(update={"key": key, "sender_id": person})


class IdentityMap(_Resolve):
    """The map on a blocking client: the accept path of the processes that are not the API,
    erasure and the console."""

    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        super().__init__(keys)
        self._redis = client
        self._script = client.register_script(_RESOLVE)

    def resolve(self, message: InboundMessage) -> InboundMessage:
        """`message` keyed by its sender's canonical id (itself when it carries no
        identities); an IDENTITY message links its previous ids to its new ones."""
        if not message.identities:
            return message
        keys, args = self._resolve_call(message)
        return self._rekeyed(message, self._script(keys=keys, args=args))

    def canonical(self, platform: Platform, identifier: str) -> str:
        """The person `identifier` belongs to (itself when the map does not know it)."""
        found = self._redis.hget(self._keys.identities(platform), identifier)
        return _text(found) or identifier

    def aliases(self, platform: Platform, identifier: str) -> set[str]:
        """Every id of the person `identifier` belongs to, `identifier` included."""
        person = self.canonical(platform, identifier)
        members = cast(Iterable[Any], self._redis.smembers(
            self._keys.identity_aliases(platform, person)))
        return {identifier, person, *(_text(m) for m in members)}

    def forget(self, platform: Platform, identifiers: Sequence[str]) -> None:
        """Delete `identifiers` and their people's alias sets (erasure)."""
        people = {self.canonical(platform, i) for i in identifiers}
        pipe = self._redis.pipeline()
        if identifiers:
            pipe.hdel(self._keys.identities(platform), *identifiers)
        for person in people:
            pipe.delete(self._keys.identity_aliases(platform, person))
        pipe.execute()


class AsyncIdentityMap(_Resolve):
    """`IdentityMap.resolve` on an asyncio client: the web app's webhooks."""

    def __init__(self, client: redis.asyncio.Redis, keys: KeyBuilder | None = None) -> None:
        super().__init__(keys)
        self._script = client.register_script(_RESOLVE)

    async def resolve(self, message: InboundMessage) -> InboundMessage:
        """`IdentityMap.resolve`, awaited (one round trip)."""
        if not message.identities:
            return message
        keys, args = self._resolve_call(message)
        return self._rekeyed(message, await self._script(keys=keys, args=args))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
