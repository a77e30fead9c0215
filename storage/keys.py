"""Every Redis key the service writes, built in one place (after aiogram's KeyBuilder).

    sealion:dedupe:{platform}:{bot}:{event_id}      string, SET NX with a TTL
    sealion:conv:{conversation}:pending             list of InboundMessage JSON, arrival order
    sealion:conv:{conversation}:inflight            list: the messages of the turn being answered
    sealion:conv:{conversation}:turn                string: the id of the turn in flight (the lock)
    sealion:conv:{conversation}:owner               string: the lease token of the turn the inflight
                                                    messages belong to ("{turn_id}.{epoch}")
    sealion:active                                  sorted set: conversation key JSON -> when it was
                                                    last seen with work (the reconciler's worklist)
    sealion:conv:{conversation}:history             list of HistoryEntry JSON, oldest first
    sealion:conv:{conversation}:img:{image_id}      bytes: a downscaled JPEG from the history
    sealion:conv:{conversation}:images              set: the ids of the conversation's images
    sealion:conv:{conversation}:lang                string: the conversation's reply language
    sealion:conv:{conversation}:lang_pin            string: the language pinned with /lang
    sealion:turn:{turn_id}:sent:{part}              string: this part of the reply went out
    sealion:turn:{turn_id}:partial                  string: the answer so far (streaming)
    sealion:turn:{turn_id}:audio:{slot}             bytes: a voice note of the turn, until heard
    sealion:turn:{turn_id}:outcome                  string: the GenerationOutcome JSON, first wins
    sealion:turn:{turn_id}:delivering               string: a worker is sending the reply (short TTL)
    sealion:lease:{token}:started                   string: generation of this lease began
    sealion:lease:{token}:generating                string: a GPU worker is generating (short TTL)
    sealion:workers                                 sorted set: worker name -> last heartbeat
    sealion:metrics:{kind}:{name}                   hash: service metrics (storage/metrics.py)
    sealion:bot:{platform}:{bot}:username           string: the bot's own username (getMe)
    sealion:bot:{platform}:{bot}:poll_offset        string: the next update id to ask for (polling)
    sealion:conv:{conversation}:outbox              stream: replies for a local channel (console, web;
                                                    storage/mailbox.py)
    sealion:upload:{upload_id}                      bytes: a photo given to a local channel
    sealion:model                                   hash: worker name -> model status JSON
    sealion:rate:{platform}:{bot}:{person}          hash: a person's token bucket (storage/abuse.py)
    sealion:rate:{platform}:{bot}:{person}:noticed  string: the slow-down notice went out this window
    sealion:rate:event:{platform}:{bot}:{event_id}  string: the rate decision for one message
    sealion:blocked                                 hash: "{platform}:{person}" -> JSON (block list)
    sealion:backlog                                 sorted set: turn id -> when it went to the model
    sealion:conv:{conversation}:busy                string: the busy notice went out (its window)
    sealion:conv:{conversation}:handoff             string: Hold JSON while a person answers instead
                                                    of the bot (TTL: HANDOFF_TTL_SECONDS, re-armed
                                                    by operator activity; storage/handoff.py)
    sealion:handoffs                                sorted set: conversation key JSON -> when its
                                                    hold expires (the console's waiting list)
    sealion:admin:session:{session_id}              string: a console session signed in and not
                                                    signed out (TTL: the session's lifetime)
    sealion:erased:{platform}:{person}              string: when the person's data was deleted;
                                                    while it lives no history or photo of their
                                                    conversations is written (storage/erasure.py)
    sealion:sent:{platform}:{bot}:{YYYY-MM}         string: messages sent this month (UTC; counted
                                                    where a monthly budget applies: WhatsApp)
    sealion:sent:{platform}:{bot}:{YYYY-MM}:paused:{person}
                                                    string: the person got this month's pause note
    sealion:ids:{platform}                          hash: a person's id (phone, BSUID) -> their
                                                    canonical id (storage/identities.py)
    sealion:ids:{platform}:{canonical}              set: every id of that person

`{conversation}` is `ConversationKey.as_path()`: platform:bot:chat:user.

Celery's queues are Redis lists of the broker too; their names are `Queue`'s values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.kernel.messages import ConversationKey, Platform


class Queue(StrEnum):
    """The Celery queues: platform work, and generation on the GPU."""

    IO = "io"
    INFERENCE = "inference"


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

    def images(self, key: ConversationKey) -> str:
        return self.conversation(key, "images")

    def erased(self, platform: Platform, user_id: str) -> str:
        return f"{self.prefix}:erased:{platform.value}:{user_id}"

    def conversation_pattern(self, key: ConversationKey) -> str:
        """A SCAN pattern matching exactly the keys of one conversation."""
        return f"{self.prefix}:conv:{glob_escape(key.as_path())}:*"

    def rate_patterns(self, platform: Platform, person: str) -> tuple[str, str]:
        """SCAN patterns of a person's rate-limit keys on every bot of a platform."""
        bucket = f"{self.prefix}:rate:{platform.value}:*:{glob_escape(person)}"
        return bucket, f"{bucket}:noticed"

    def person_pattern(self, platform: Platform, user_id: str) -> str:
        """A SCAN pattern matching every conversation key of a person on a platform (and maybe
        others: check each with `conversation_of`)."""
        return f"{self.prefix}:conv:{platform.value}:*:{glob_escape(user_id)}:*"

    def conversation_of(self, name: str) -> ConversationKey | None:
        """The conversation that a `conversation(key, part)` key belongs to; None for another
        key."""
        head = f"{self.prefix}:conv:"
        parts = name[len(head):].split(":") if name.startswith(head) else []
        if len(parts) < 5 or parts[0] not in {p.value for p in Platform}:
            return None
        return ConversationKey(platform=Platform(parts[0]), bot_id=parts[1], chat_id=parts[2],
                               user_id=parts[3])

    def language(self, key: ConversationKey) -> str:
        return self.conversation(key, "lang")

    def language_pin(self, key: ConversationKey) -> str:
        return self.conversation(key, "lang_pin")

    def turn_sent(self, turn_id: str, part: int) -> str:
        return f"{self.prefix}:turn:{turn_id}:sent:{part}"

    def turn_partial(self, turn_id: str) -> str:
        return f"{self.prefix}:turn:{turn_id}:partial"

    def turn_audio(self, turn_id: str, slot: int) -> str:
        return f"{self.prefix}:turn:{turn_id}:audio:{slot}"

    def turn_outcome(self, turn_id: str) -> str:
        return f"{self.prefix}:turn:{turn_id}:outcome"

    def turn_delivering(self, turn_id: str) -> str:
        return f"{self.prefix}:turn:{turn_id}:delivering"

    def lease_started(self, token: str) -> str:
        return f"{self.prefix}:lease:{token}:started"

    def lease_generating(self, token: str) -> str:
        return f"{self.prefix}:lease:{token}:generating"

    def active(self) -> str:
        return f"{self.prefix}:active"

    def metric(self, kind: str, name: str) -> str:
        return f"{self.prefix}:metrics:{kind}:{name}"

    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def bot_username(self, platform: Platform, bot_id: str) -> str:
        return f"{self.prefix}:bot:{platform.value}:{bot_id}:username"

    def poll_offset(self, platform: Platform, bot_id: str) -> str:
        return f"{self.prefix}:bot:{platform.value}:{bot_id}:poll_offset"

    def outbox(self, key: ConversationKey) -> str:
        return self.conversation(key, "outbox")

    def upload(self, upload_id: str) -> str:
        return f"{self.prefix}:upload:{upload_id}"

    def model_status(self) -> str:
        return f"{self.prefix}:model"

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

    def sent_month(self, platform: Platform, bot_id: str, month: str) -> str:
        return f"{self.prefix}:sent:{platform.value}:{bot_id}:{month}"

    def paused_note(self, platform: Platform, bot_id: str, month: str, person: str) -> str:
        return f"{self.sent_month(platform, bot_id, month)}:paused:{person}"

    def paused_patterns(self, platform: Platform, person: str) -> str:
        """A SCAN pattern of a person's pause notes on every bot and month of a platform."""
        return f"{self.prefix}:sent:{platform.value}:*:paused:{glob_escape(person)}"

    def identities(self, platform: Platform) -> str:
        return f"{self.prefix}:ids:{platform.value}"

    def identity_aliases(self, platform: Platform, person: str) -> str:
        return f"{self.identities(platform)}:{person}"

    def handoff(self, key: ConversationKey) -> str:
        return self.conversation(key, "handoff")

    def handoffs(self) -> str:
        return f"{self.prefix}:handoffs"

    def admin_session(self, session_id: str) -> str:
        return f"{self.prefix}:admin:session:{session_id}"


def glob_escape(text: str) -> str:
    """`text` matched literally in a Redis SCAN/KEYS pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)
