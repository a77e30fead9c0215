"""The typed boundary between the turn's tasks: what crosses Celery as JSON, and nothing else.

    TurnPlan (bot.conversation)  what the turn does: its messages, language, notices, images
    GenerationJob                what the GPU worker runs: prompt turns with image ids, not bytes
    GenerationOutcome            what comes back: the answer (or an error), token counts, time
    HearingJob (workers.voice)   what the inference worker transcribes: the turn's voice notes
    Step                         what the I/O side does next, a union discriminated by `kind`:
                                 Idle | Wait | Transcribe | Generate | Deliver

Every model is frozen; tasks validate their arguments with these models on entry, so a
malformed or stale message fails loudly at the boundary instead of deep inside a step.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bot.conversation import TurnPlan
from bot.messages import ConversationKey
from workers.voice import HearingJob


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    #: Write the answer so far to Redis while generating (streamed drafts).
    stream: bool = False


class GuardCheck(_Frozen):
    """One guard decision of the turn (`workers.moderation.GuardDecision` as JSON)."""

    side: str  # "input" | "output" | "draft"
    label: str  # "safe" | "unsafe" | "controversial" | "error"
    categories: tuple[str, ...] = ()
    latency_ms: int = 0
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
    #: Set when the guard stopped the turn: "input" (the model never ran), "output" or "draft"
    #: (the answer was withheld); `text` is then "".
    refused: str | None = None
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
    """Send the turn's voice notes to the inference worker; the turn goes on once heard."""

    kind: Literal["transcribe"] = "transcribe"
    job: HearingJob


class Generate(_Frozen):
    """Send `job` to the GPU worker, then deliver its outcome for `plan`."""

    kind: Literal["generate"] = "generate"
    plan: TurnPlan
    lease: str
    job: GenerationJob


class Deliver(_Frozen):
    """Deliver at once: the turn needs no model (commands, notices), or already has its
    outcome (a turn resumed after its worker died)."""

    kind: Literal["deliver"] = "deliver"
    plan: TurnPlan
    lease: str
    outcome: GenerationOutcome | None = None


Step = Annotated[Idle | Wait | Transcribe | Generate | Deliver, Field(discriminator="kind")]
STEP: TypeAdapter[Step] = TypeAdapter(Step)
