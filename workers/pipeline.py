"""The steps of one turn, called by the thin Celery tasks in `workers.tasks`.

    prepare (io)  take the turn, act on commands, fetch photos, choose the language, build the
                  model request from the history
    generate (inference)  run the engine on the request
    deliver (io)  send notices and the answer (or an apology), write the history, end the turn,
                  and start the next turn if messages arrived meanwhile

Each step first checks that its turn is still the conversation's current one, so a redelivered
task of a finished turn does nothing; parts already sent are skipped on a retry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from adapters.base import MediaError, MediaTooLarge, PermanentSendError
from bot.conversation import TurnPlan, clean_reply, plan_turn, system_prompt
from bot.language import clean, is_other_language
from bot.messages import ConversationKey, Platform, Reply
from bot.texts import REPLY_INSTRUCTION, Text, text
from storage.history import HistoryEntry
from storage.log import TurnRecord
from workers.images import NotAnImage, downscale_to_jpeg, make_thumbnail
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: Only the newest images of a conversation go to the model as pixels; older ones as a mention.
MAX_HISTORY_IMAGES = 3
#: Answers shorter than this (in letters) are not checked for their language.
MIN_CHECKED_LETTERS = 20
#: A /lang choice outlives the history: people expect it to stick.
PIN_TTL_SECONDS = 365 * 24 * 3600


@dataclass
class Step:
    """What the task should do next."""

    kind: str  # "idle" | "wait" | "generate" | "deliver"
    countdown: float = 0.0
    plan: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)


def prepare(rt: Runtime, key: ConversationKey) -> Step:
    s = rt.settings
    pending = rt.store.pending(key)
    if pending and pending[-1].album_id:
        # Album photos arrive as separate updates: gather them before starting the turn.
        wait = pending[-1].received_at + s.album_window_seconds - time.time()
        if wait > 0:
            return Step("wait", countdown=wait)
    state = rt.store.take_turn(key)
    if state.status == "idle":
        return Step("idle")
    if state.status == "busy":
        # The turn in flight starts the next one when it ends; this retry only matters if its
        # worker died, after the turn's lock has expired.
        return Step("wait", countdown=min(state.retry_after + 0.5, s.turn_timeout_seconds))
    assert state.turn_id is not None
    messages = rt.store.turn_messages(key)
    current = rt.store.language(key)
    adapter = rt.adapter(key.platform)
    if current is None and not any(m.language_hint for m in messages):
        # First contact on a platform whose messages carry no language (LINE): ask the profile.
        try:
            hint = rt.run(adapter.language_hint(key))
        except Exception as exc:
            log.info("language hint unavailable: %s", exc)
            hint = None
        if hint:
            messages = [m.model_copy(update={"language_hint": hint}) for m in messages]
    plan = plan_turn(state.turn_id, messages, current_language=current,
                     default_language=s.default_language,
                     pinned=rt.store.pinned_language(key))
    log.info("turn %s: %d message(s), language %s", plan.turn_id, len(messages), plan.language,
             extra={"conversation": key.log_id(), "turn": plan.turn_id,
                    "message_ids": list(plan.message_ids)})
    if plan.reset:
        rt.history.clear(key)
    if plan.pin is not None:
        rt.store.pin_language(key, None if plan.pin == "auto" else plan.pin,
                              PIN_TTL_SECONDS)

    if plan.needs_model:
        _typing(rt, plan)
    notices = list(plan.notices)
    image_ids: list[str] = []
    for attachment in plan.attachments:
        try:
            data = rt.run(adapter.fetch_media(attachment.ref, attachment.size))
            image_ids.append(rt.history.save_image(key, downscale_to_jpeg(data,
                                                                          s.max_image_pixels)))
        except MediaTooLarge as exc:
            notices.append(text(Text.FILE_TOO_LARGE, plan.language,
                                limit_mb=exc.limit_bytes // (1024 * 1024)))
        except (MediaError, NotAnImage) as exc:
            # Refused by the fetch policy, not downloadable, or not decodable: say so.
            log.warning("turn %s: attachment unreadable: %s", plan.turn_id, type(exc).__name__)
            notices.append(text(Text.IMAGE_UNREADABLE, plan.language))
    plan = plan.model_copy(update={"notices": tuple(notices), "image_ids": tuple(image_ids),
                                   "attachments": ()})
    if plan.user_text.strip() or image_ids:
        stream = (s.telegram_streaming and key.platform == Platform.TELEGRAM
                  and bool(plan.reply_context.get("private")))
        plan = plan.model_copy(update={"stream": stream})
        return Step("generate", plan=plan.model_dump(mode="json"),
                    request=_request(rt, plan))
    return Step("deliver", plan=plan.model_dump(mode="json"))


def _typing(rt: Runtime, plan: TurnPlan) -> None:
    try:
        rt.run(rt.adapter(plan.key.platform).indicate_typing(plan.key, plan.reply_context))
    except Exception as exc:  # typing is a courtesy: never fail a turn for it
        log.info("typing indicator failed: %s", exc)


def _request(rt: Runtime, plan: TurnPlan) -> dict[str, Any]:
    """The model request as JSON: image ids, not bytes; the GPU worker reads them from Redis."""
    s = rt.settings
    budget = max(s.history_max_tokens - len(plan.user_text) // 4, 0)
    entries = [] if plan.reset else rt.history.load(plan.key, max_tokens=budget)
    turns = [{"role": e.role, "text": e.text, "image_ids": list(e.image_ids)} for e in entries]
    turns.append({"role": "user", "text": plan.user_text, "image_ids": list(plan.image_ids)})
    # Keep pixels for the newest images only; older ones become a short mention.
    seen = 0
    for turn in reversed(turns):
        kept = []
        for image_id in reversed(turn["image_ids"]):
            if seen < MAX_HISTORY_IMAGES:
                kept.append(image_id)
                seen += 1
            else:
                turn["text"] = f"[photo] {turn['text']}".strip()
        turn["image_ids"] = list(reversed(kept))
    return {
        "turn_id": plan.turn_id,
        "key": plan.key.model_dump(mode="json"),
        "system": system_prompt(s.system_prompt, plan.language),
        "turns": turns,
        "max_new_tokens": s.max_new_tokens,
        "language": plan.language,
        "stream": plan.stream,
    }


def generate(rt: Runtime, request: dict[str, Any]) -> dict[str, Any]:
    from workers.engines.base import ChatTurn, GenerationRequest

    key = ConversationKey.model_validate(request["key"])
    turn_id = request["turn_id"]
    if not rt.store.claim(key, turn_id):
        return {"skipped": True}
    try:
        turns = tuple(
            ChatTurn(role=t["role"], text=t["text"],
                     images=tuple(img for i in t["image_ids"]
                                  if (img := rt.history.image(key, i)) is not None))
            for t in request["turns"]
        )
        model_request = GenerationRequest(
            system=request["system"], turns=turns, max_new_tokens=request["max_new_tokens"],
            on_partial=_partial_writer(rt, turn_id) if request.get("stream") else None)
        result = rt.engine().generate(model_request)
        target = request.get("language")
        if target and rt.settings.reply_language_check and _wrong_language(result.text, target):
            # Once more, with the instruction repeated in the user's own turn.
            log.info("turn %s: answer not in %s; generating again", turn_id, target)
            rt.metrics.inc("regenerations")
            result = rt.engine().generate(_firmer(model_request, target))
    except Exception as exc:  # an answer must come back, even if it is an error
        log.exception("turn %s: generation failed", turn_id)
        return {"text": "", "error": f"{type(exc).__name__}: {exc}"}
    rt.store.claim(key, turn_id)
    log.info("turn %s: generated %d tokens in %.2fs", turn_id, result.completion_tokens,
             result.seconds, extra={"conversation": key.log_id(), "turn": turn_id})
    if result.completion_tokens and result.seconds > 0:
        rt.metrics.inc("generated_tokens", result.completion_tokens)
        rt.metrics.observe("generation_seconds", result.seconds)
        rt.metrics.observe("batch_size", result.batch_size)
        rt.metrics.observe("generation_tokens_per_second",
                           result.completion_tokens / result.seconds)
    return {"text": result.text, "error": result.error, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens, "seconds": result.seconds}


def _partial_writer(rt: Runtime, turn_id: str, every: float = 0.5) -> Any:
    """A callback keeping the answer so far in Redis, at most every `every` seconds."""
    last = [0.0]

    def write(text: str) -> None:
        now = time.monotonic()
        if text and now - last[0] >= every:
            last[0] = now
            rt.store.set_partial(turn_id, clean_reply(text))

    return write


def _wrong_language(answer: str, target: str) -> bool:
    """True when the answer is confidently in another language than `target`."""
    cleaned = clean_reply(answer)
    if len(clean(cleaned)) < MIN_CHECKED_LETTERS:
        return False
    return is_other_language(cleaned, target)


def _firmer(request: Any, target: str) -> Any:
    from workers.engines.base import ChatTurn

    instruction = REPLY_INSTRUCTION.get(target) or REPLY_INSTRUCTION["en"]
    *earlier, last = request.turns
    nudged = ChatTurn(role=last.role, text=f"{last.text}\n\n({instruction})".strip(),
                      images=last.images)
    return replace(request, system=f"{request.system}\n\n{instruction}",
                   turns=(*earlier, nudged))


class _TurnDeliveryLog:
    """Which parts of the turn's reply went out, kept in Redis under the turn id."""

    def __init__(self, rt: Runtime, turn_id: str) -> None:
        self._rt, self._turn_id = rt, turn_id
        self._sent = rt.store.sent_parts(turn_id)

    def is_sent(self, part: int) -> bool:
        return str(part) in self._sent

    def mark_sent(self, part: int) -> None:
        self._rt.store.mark_sent(self._turn_id, str(part))
        self._sent.add(str(part))


def deliver(rt: Runtime, result: dict[str, Any] | None, plan_json: dict[str, Any]) -> bool:
    """Send the turn's replies and end it. Returns True when more messages are waiting.

    Raises `TransientSendError` for the task to retry; parts already sent are not sent again.
    """
    plan = TurnPlan.model_validate(plan_json)
    key = plan.key
    if (result or {}).get("skipped") or not rt.store.claim(key, plan.turn_id):
        return False
    notices = list(plan.notices)
    answer = ""
    if result is not None:
        answer = clean_reply(result.get("text") or "")
        if result.get("error"):
            log.warning("turn %s: engine error: %s", plan.turn_id, result["error"])
        if not answer:
            notices.append(text(Text.APOLOGY, plan.language))
    reply = Reply(key=key, in_reply_to=plan.in_reply_to, language=plan.language,
                  notices=tuple(notices), text=answer, reply_context=plan.reply_context)
    try:
        rt.run(rt.adapter(key.platform).send(reply, _TurnDeliveryLog(rt, plan.turn_id)))
    except PermanentSendError as exc:
        log.error("turn %s: reply refused by %s: %s", plan.turn_id, key.platform, exc)
        rt.metrics.inc("send_errors", platform=key.platform.value, code=exc.code)
    else:
        rt.metrics.observe("first_reply_seconds", max(time.time() - plan.received_at, 0),
                           platform=key.platform.value)
    rt.metrics.inc("languages", language=plan.language)
    if rt.store.mark_done_once(plan.turn_id):
        rt.store.set_language(key, plan.language, rt.settings.history_ttl_seconds)
        if plan.needs_model:
            entries = [HistoryEntry(role="user", text=plan.user_text, image_ids=plan.image_ids,
                                    language=plan.language)]
            if answer:
                entries.append(HistoryEntry(role="assistant", text=answer,
                                            language=plan.language))
            rt.history.append(key, *entries)
        # Before finish_turn: the turn's messages are still in its inflight list.
        messages = rt.store.turn_messages(key)
        rt.conversation_log.record_turn(TurnRecord(
            key=key, messages=tuple(messages), user_text=plan.user_text,
            thumbnails=tuple(make_thumbnail(data) for i in plan.image_ids
                             if (data := rt.history.image(key, i))),
            reply_text=answer or "\n".join(notices), language=plan.language,
            model=rt.settings.model_id if result is not None else None,
            latency_ms=(time.time() - plan.received_at) * 1000 if plan.received_at else None,
            prompt_tokens=(result or {}).get("prompt_tokens"),
            completion_tokens=(result or {}).get("completion_tokens"),
            error=(result or {}).get("error"), turn_id=plan.turn_id))
    rt.store.finish_turn(key, plan.turn_id)
    return rt.store.has_work(key)


def keep_typing(rt: Runtime, plan: TurnPlan, started: float) -> bool:
    """Refresh the typing indicator, or the draft of a streamed answer; True while the turn
    is still being answered."""
    if time.time() - started > rt.settings.turn_timeout_seconds:
        return False
    if not rt.store.in_flight(plan.key, plan.turn_id):
        return False
    partial = rt.store.partial(plan.turn_id) if plan.stream else None
    if partial:
        try:
            draft_id = int(plan.turn_id[:8], 16) or 1
            rt.run(rt.adapter(plan.key.platform).show_partial(plan.key, plan.reply_context,
                                                              partial, draft_id))
            return True
        except Exception as exc:  # a draft is a courtesy, like typing
            log.info("draft not shown: %s", exc)
    _typing(rt, plan)
    return True
