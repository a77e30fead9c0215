"""The speech host's contract: what a speech recogniser takes, returns, and raises.

    RecogniserError           the recogniser cannot serve this clip (callers apologise)
     └── RecogniserUnavailable  it cannot serve at all: the model failed to load, the server
                                is unreachable or refuses the credentials

`BaseRecogniser` is the speech model's `workers.models.host.ModelHost` (built cheaply, `load()`
once, `warm_up()`, `health()`). `transcribe_batch(clips)` returns one `Transcript` per clip, in
order, and raises `RecogniserError` when the batch as a whole failed; `transcribe(clip)` is the
one-clip call. Both may be called from many threads at once: Whisper in process
(`workers.models.speech.transformers`) gathers the clips of all of them into batches (the one
batcher, `workers.models.batching`); a server (`workers.models.speech.openai`) batches by itself.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from bot.kernel.languages import normalise_language
from workers.audio import Clip
from workers.models.host import HostKind, ModelHost

__all__ = [
    "BaseRecogniser",
    "RecogniserError",
    "RecogniserUnavailable",
    "Transcript",
    "our_language",
]

#: Whisper's language names (OpenAI's verbose_json says "english", not "en") for our languages.
WHISPER_NAMES: dict[str, str] = {
    "english": "en", "indonesian": "id", "malay": "ms", "tagalog": "tl", "filipino": "tl",
    "thai": "th", "vietnamese": "vi", "tamil": "ta", "myanmar": "my", "burmese": "my",
    "khmer": "km", "lao": "lo", "chinese": "zh", "mandarin": "zh", "cantonese": "zh",
}


class RecogniserError(Exception):
    """The clip could not be transcribed."""


class RecogniserUnavailable(RecogniserError):
    """The recogniser cannot serve any clip (load failure, server unreachable, refused)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    #: The language the recogniser heard, as one of our codes (None: unknown or not ours).
    language: str | None = None
    #: Wall time of the work that produced it (clips transcribed together share it).
    seconds: float = 0.0
    batch_size: int = 1


def our_language(detected: str | None) -> str | None:
    """A recogniser's language ("th", "<|th|>", "thai", "yue") as our code, or None."""
    if not detected:
        return None
    code = detected.strip().strip("<|>").lower()
    return normalise_language(WHISPER_NAMES.get(code, code))


class BaseRecogniser(ModelHost):
    """The speech model's host; `load()` raises `RecogniserUnavailable`."""

    kind: ClassVar[HostKind] = HostKind.SPEECH
    unavailable_error: ClassVar[type[Exception]] = RecogniserUnavailable

    @abstractmethod
    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        """One transcript per clip, same order; `RecogniserError` if the batch failed."""

    def transcribe(self, clip: Clip) -> Transcript:
        return self.transcribe_batch([clip])[0]
