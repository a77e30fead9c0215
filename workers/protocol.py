"""The typed boundary between the turn's tasks: what crosses Celery as JSON, and nothing else.

    TurnPlan           planning's result: the turn's language, commands, notices, the person's
                       words and attachments (`workers.turn.planning`, no I/O)
    Turn               a prepared turn: its plan, its photos and voice notes once read, every
                       notice in order; what generation and delivery work from
    GenerationJob      what the GPU worker runs: prompt turns with image ids, not bytes
    GenerationOutcome  what comes back: the answer (or an error), token counts, time, the
                       guard's decisions
    HearingJob, Heard  what the inference worker transcribes: the turn's voice notes
    Step               what the I/O side does next, a union discriminated by `kind`:
                       Idle | Wait | Transcribe | Generate | Deliver

Every model is frozen and every closed set of values an enum; tasks validate their arguments
with these models on entry, so a malformed or stale message fails loudly at the boundary
instead of deep inside a stage.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bot.kernel.messages import Attachment, ConversationKey, ReplyContext

#: A voice note's type when the platform does not say (Telegram voice, WhatsApp voice).
DEFAULT_MIME = "audio/ogg"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Held(enum.StrEnum):
    """Why the abuse controls held back every message of a turn (`workers.turn.screening`)."""

    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    #: The platform's monthly message budget is spent (workers/turn/budget.py).
    PAUSED = "paused"


class Handoff(enum.StrEnum):
    """A turn and the hand-off to a person (`storage.handoff`): never a guard mark."""

    #: The turn asks for a person (/human, or a sure request in words): it starts the hold.
    REQUESTED = "requested"
    #: The conversation is held: the bot does not answer; the words reach the log and history.
    HELD = "held"


class GuardSide(enum.StrEnum):
    INPUT = "input"
    OUTPUT = "output"
    #: A streamed draft of the answer, checked before it is shown.
    DRAFT = "draft"


class GuardLabel(enum.StrEnum):
    SAFE = "safe"
    UNSAFE = "unsafe"
    CONTROVERSIAL = "controversial"
    #: The guard gave no verdict (down, too slow, a text too long to check).
    ERROR = "error"


class Refusal(enum.StrEnum):
    """Where the guard stopped a turn: before the model ran, or on its answer (or draft)."""

    INPUT = "input"
    OUTPUT = "output"
    DRAFT = "draft"


class TurnPlan(_Frozen):
    """What one turn does, decided from its messages alone (`workers.turn.planning`)."""

    turn_id: str
    key: ConversationKey
    language: str
    #: Texts the bot writes itself, sent (in order) before the model's answer.
    notices: tuple[str, ...] = ()
    #: Forget the history before this turn's question (a /reset in the turn).
    reset: bool = False
    #: A /lang in the turn: the language to pin, or "auto" to release the pin.
    pin: str | None = None
    #: The person's words for the model (a voice note's transcript included).
    user_text: str = ""
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str = ""
    reply_context: ReplyContext | None = None
    message_ids: tuple[str, ...] = ()
    #: When the turn's first message reached the webhook (for the time-to-reply metric).
    received_at: float = 0.0
    #: Set when the abuse controls held back every message: nothing goes to the model.
    held: Held | None = None
    #: The turn and the hand-off to a person: nothing goes to the model either.
    handoff: Handoff | None = None

    @property
    def needs_model(self) -> bool:
        """Whether the turn asks the model something (words, or photos to look at)."""
        return self.handoff is None and bool(self.user_text.strip() or self.attachments)


class Photos(_Frozen):
    """The turn's photos once downloaded, decoded and stored (`workers.turn.media`)."""

    #: History image ids of what the model sees.
    image_ids: tuple[str, ...] = ()
    #: Their thumbnails for the conversation log, made when they were first decoded.
    thumbnail_ids: tuple[str, ...] = ()


class Documents(_Frozen):
    """The turn's files once read (`workers.turn.reading`): their text for the model, cut to
    DOCUMENT_MAX_TOKENS, and their scanned pages stored like photos."""

    #: Each file's name and pages, then its text with page or section marks.
    text: str = ""
    #: History image ids of the scanned pages the model sees.
    image_ids: tuple[str, ...] = ()
    #: Their thumbnails for the conversation log.
    thumbnail_ids: tuple[str, ...] = ()
    #: What the log shows of them: "[file: report.pdf, 3 pages]" a file.
    mentions: tuple[str, ...] = ()


class VoiceNote(_Frozen):
    """A voice note waiting in Redis (`storage.voice.VoiceNotes`) until the turn is delivered."""

    slot: int
    mime_type: str


class Voice(_Frozen):
    """What the turn's voice notes gave (`workers.turn.hearing`)."""

    #: What the person said (None: nothing was spoken); it is part of the plan's `user_text`.
    transcript: str | None = None
    #: Kept for the log when ASR_KEEP_AUDIO says so; dropped when the turn is delivered.
    notes: tuple[VoiceNote, ...] = ()


class KnowledgeMode(enum.StrEnum):
    OFF = "off"
    ASSIST = "assist"
    STRICT = "strict"


class GroundPassage(_Frozen):
    """A passage of the knowledge base put in the prompt (`workers.turn.knowledge`)."""

    id: int
    document_id: int
    title: str
    page: int | None = None
    section: str | None = None
    text: str
    score: float = 0.0


class Grounding(_Frozen):
    """What the knowledge base gave the turn: its passages in rank order, within the budget."""

    mode: KnowledgeMode = KnowledgeMode.OFF
    passages: tuple[GroundPassage, ...] = ()
    #: The person asked and nothing relevant was found (strict mode answers with the decline).
    declined: bool = False


class Turn(_Frozen):
    """A prepared turn: the plan, what its media gave, and every notice in the order sent."""

    plan: TurnPlan
    #: The plan's notices, then those of the voice notes, the abuse controls and the photos.
    notices: tuple[str, ...] = ()
    photos: Photos = Photos()
    voice: Voice = Voice()
    #: Show the answer while it is generated (where the platform can).
    stream: bool = False
    grounding: Grounding = Grounding()
    documents: Documents = Documents()

    @property
    def key(self) -> ConversationKey:
        return self.plan.key

    @property
    def turn_id(self) -> str:
        return self.plan.turn_id

    @property
    def language(self) -> str:
        return self.plan.language

    @property
    def needs_model(self) -> bool:
        if self.plan.handoff is not None:
            return False  # held, or asking for a person: no model call
        if self.grounding.declined and not self.brought:
            return False  # strict mode found nothing: the decline is the answer
        return bool(self.user_content.strip() or self.image_ids)

    @property
    def brought(self) -> bool:
        """Whether the person brought something of their own to read (photos, files): strict
        mode's decline does not stop the model from reading it."""
        return bool(self.image_ids or self.documents.text)

    @property
    def user_content(self) -> str:
        """The person's turn as the model reads it (and the history keeps it): their words,
        then the text of the files they sent."""
        return "\n\n".join(part for part in (self.plan.user_text, self.documents.text) if part)

    @property
    def image_ids(self) -> tuple[str, ...]:
        """The turn's images for the model: its photos, then its files' scanned pages."""
        return self.photos.image_ids + self.documents.image_ids


class Problem(enum.StrEnum):
    SILENT = "silent"  # nothing to hear, or the recogniser heard nothing
    TOO_LONG = "too_long"  # over ASR_MAX_SECONDS
    UNREADABLE = "unreadable"  # not audio we can decode, or not downloadable
    TOO_LARGE = "too_large"  # over the download limit
    FAILED = "failed"  # the recogniser failed


class Heard(_Frozen):
    """One voice note of the turn: where it waits, then what was heard (or why not)."""

    #: Index of its message among the turn's messages.
    message: int
    #: Where its bytes wait in Redis (`storage.voice.VoiceNotes`); None once settled or failed.
    slot: int | None = None
    mime_type: str = DEFAULT_MIME
    seconds: float = 0.0
    text: str = ""
    #: The language the recogniser heard, as one of our codes.
    language: str | None = None
    problem: Problem | None = None
    #: MediaTooLarge's limit, for the notice.
    limit_bytes: int = 0

    @property
    def pending(self) -> bool:
        return self.slot is not None and self.problem is None and not self.text


class HearingJob(_Frozen):
    """What the inference worker transcribes: the turn's voice notes, some already settled."""

    turn_id: str
    lease: str
    key: ConversationKey
    heard: tuple[Heard, ...]


class JobTurn(_Frozen):
    """One turn of the prompt; images are history image ids the GPU worker reads from Redis."""

    role: Literal["user", "assistant"]
    text: str
    image_ids: tuple[str, ...] = ()


class GenerationJob(_Frozen):
    turn_id: str
    #: The lease token the job was sent under; a job of a lapsed epoch is skipped.
    lease: str
    key: ConversationKey
    system: str
    turns: tuple[JobTurn, ...]
    max_new_tokens: int
    #: The reply language: an answer confidently in another one is generated once more.
    language: str | None = None
    #: Show the answer so far while generating (streamed drafts).
    stream: bool = False


class GuardCheck(_Frozen):
    """One guard decision of the turn (`workers.turn.moderation.GuardDecision` as JSON)."""

    side: GuardSide
    label: GuardLabel
    categories: tuple[str, ...] = ()
    latency_ms: int = 0
    #: The turn must not go on: refused (a flagged label) or the guard failed closed.
    blocked: bool = False


class GenerationOutcome(_Frozen):
    text: str = ""
    #: "<ExceptionType>: message" when the engine could not answer; the turn then apologises.
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float | None = None
    #: The turn was no longer in flight when the job ran (a stale redelivery): nothing to do.
    skipped: bool = False
    #: The guard's decisions on the turn, in order (GUARD_BACKEND).
    guard: tuple[GuardCheck, ...] = ()
    #: Set when the guard stopped the turn; `text` is then "".
    refused: Refusal | None = None
    #: The answer the guard flagged, for the log; never sent.
    withheld: str | None = None


class Idle(_Frozen):
    """Nothing waiting, or a turn already in flight (its holder starts the next one)."""

    kind: Literal["idle"] = "idle"


class Wait(_Frozen):
    """Come back after `countdown` seconds (photos of an album are still arriving)."""

    kind: Literal["wait"] = "wait"
    countdown: float


class Transcribe(_Frozen):
    """Hear the turn's voice notes (the inference worker); the turn goes on once heard."""

    kind: Literal["transcribe"] = "transcribe"
    job: HearingJob


class Generate(_Frozen):
    """Run `job` (the GPU worker), then deliver its outcome for `turn`."""

    kind: Literal["generate"] = "generate"
    turn: Turn
    lease: str
    job: GenerationJob


class Deliver(_Frozen):
    """Deliver at once: the turn needs no model (commands, notices), or already has its
    outcome (a turn resumed after its worker died)."""

    kind: Literal["deliver"] = "deliver"
    turn: Turn
    lease: str
    outcome: GenerationOutcome | None = None


Step = Annotated[Idle | Wait | Transcribe | Generate | Deliver, Field(discriminator="kind")]
STEP: TypeAdapter[Step] = TypeAdapter(Step)
