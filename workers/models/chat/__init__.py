"""The chat model: the contract (`base`), in process (`transformers`), on a server (`openai`)."""

from workers.models.chat.base import (
    BaseEngine,
    ChatTurn,
    EngineError,
    EngineOverloaded,
    GenerationRequest,
    GenerationResult,
)

__all__ = ["BaseEngine", "ChatTurn", "EngineError", "EngineOverloaded", "GenerationRequest",
           "GenerationResult"]
