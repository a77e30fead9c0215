"""Every Redis key the service writes, built in one place (after aiogram's KeyBuilder).

    sealion:dedupe:{platform}:{bot}:{event_id}      string, SET NX with a TTL
    sealion:conv:{conversation}:pending             list of InboundMessage JSON, arrival order
    sealion:conv:{conversation}:inflight            list: the messages of the turn being answered
    sealion:conv:{conversation}:turn                string: the id of the turn in flight (the lock)
    sealion:conv:{conversation}:owner               string: the turn the inflight messages belong to
    sealion:conv:{conversation}:history             list of HistoryEntry JSON, oldest first
    sealion:conv:{conversation}:img:{image_id}      bytes: a downscaled JPEG from the history
    sealion:conv:{conversation}:lang                string: the conversation's reply language
    sealion:conv:{conversation}:lang_pin            string: the language pinned with /lang
    sealion:turn:{turn_id}:sent                     set: indices of reply parts already sent
    sealion:turn:{turn_id}:done                     string: the turn's history was written
    sealion:turn:{turn_id}:partial                  string: the answer so far (streaming)
    sealion:workers                                 sorted set: worker name -> last heartbeat
    sealion:metrics:{kind}:{name}                   hash: service metrics (storage/metrics.py)
    sealion:bot:{platform}:{bot}:username           string: the bot's own username (getMe)
    sealion:rate:{platform}:{bot}:{person}          hash: a person's token bucket (storage/abuse.py)
    sealion:rate:{platform}:{bot}:{person}:noticed  string: the slow-down notice went out this window
    sealion:rate:event:{platform}:{bot}:{event_id}  string: the rate decision for one message
    sealion:blocked                                 hash: "{platform}:{person}" -> JSON (block list)
    sealion:backlog                                 sorted set: turn id -> when it went to the model
    sealion:conv:{conversation}:busy                string: the busy notice went out (its window)

`{conversation}` is `ConversationKey.as_path()`: platform:bot:chat:user.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import ConversationKey, Platform


@dataclass(frozen=True)
class KeyBuilder:
    prefix: str = "sealion"

    def dedupe(self, platform: Platform, bot_id: str, event_id: str) -> str:
        return f"{self.prefix}:dedupe:{platform.value}:{bot_id}:{event_id}"

    def conversation(self, key: ConversationKey, part: str) -> str:
        return f"{self.prefix}:conv:{key.as_path()}:{part}"

    def pending(self, key: ConversationKey) -> str:
        return self.conversation(key, "pending")

    def inflight(self, key: ConversationKey) -> str:
        return self.conversation(key, "inflight")

    def turn(self, key: ConversationKey) -> str:
        return self.conversation(key, "turn")

    def turn_owner(self, key: ConversationKey) -> str:
        return self.conversation(key, "owner")

    def history(self, key: ConversationKey) -> str:
        return self.conversation(key, "history")

    def image(self, key: ConversationKey, image_id: str) -> str:
        return self.conversation(key, f"img:{image_id}")

    def image_pattern(self, key: ConversationKey) -> str:
        return self.conversation(key, "img:*")

    def language(self, key: ConversationKey) -> str:
        return self.conversation(key, "lang")

    def language_pin(self, key: ConversationKey) -> str:
        return self.conversation(key, "lang_pin")

    def turn_sent(self, turn_id: str) -> str:
        return f"{self.prefix}:turn:{turn_id}:sent"

    def turn_partial(self, turn_id: str) -> str:
        return f"{self.prefix}:turn:{turn_id}:partial"

    def turn_done(self, turn_id: str) -> str:
        return f"{self.prefix}:turn:{turn_id}:done"

    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def bot_username(self, platform: Platform, bot_id: str) -> str:
        return f"{self.prefix}:bot:{platform.value}:{bot_id}:username"

    def rate_bucket(self, platform: Platform, bot_id: str, person: str) -> str:
        return f"{self.prefix}:rate:{platform.value}:{bot_id}:{person}"

    def rate_noticed(self, platform: Platform, bot_id: str, person: str) -> str:
        return f"{self.rate_bucket(platform, bot_id, person)}:noticed"

    def rate_event(self, platform: Platform, bot_id: str, event_id: str) -> str:
        return f"{self.prefix}:rate:event:{platform.value}:{bot_id}:{event_id}"

    def blocked(self) -> str:
        return f"{self.prefix}:blocked"

    def backlog(self) -> str:
        return f"{self.prefix}:backlog"

    def busy_notice(self, key: ConversationKey) -> str:
        return self.conversation(key, "busy")
