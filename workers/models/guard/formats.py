"""How each guard model is asked, and how its answer is read.

SEA-Guard (AI Singapore, 2026-02: Qwen-SEA-Guard-4B/8B-2602 on Qwen-SEA-LION-v4-VL, Llama- and
Gemma-SEA-Guard) takes one user message and no system prompt, and answers ``safe`` or
``unsafe``. Its model card's prompts, exactly:

    the prompt alone         {prompt}
    a prompt and a response  Human user:{prompt}\\nAI assistant:{response}
    a response alone         Human user:\\nAI assistant:{response}

Sampling is greedy (temperature 0), and anything that does not start with ``safe`` is unsafe.

Qwen3Guard-Gen (0.6B/4B/8B) has its own chat template, applied to the ordinary conversation (the
user's message; for a response, that and the assistant's message), and answers::

    Safety: Safe|Unsafe|Controversial
    Categories: Violent, ...            (None when safe)
    Refusal: Yes|No                     (response moderation only)

An answer with no ``Safety:`` line is read as unsafe (fail closed).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from workers.models.control_tokens import neutralise_control_tokens
from workers.models.guard.base import GuardRequest, GuardVerdict, Label, clip

__all__ = ["FORMATS", "GuardFormat", "Qwen3GuardFormat", "SeaGuardFormat", "format_named"]


class GuardFormat(ABC):
    name: str
    #: Tokens the guard may write: a label (and Qwen3Guard's categories) is all we read.
    max_new_tokens: int
    #: Whether the guard model reads images.
    images: bool

    @abstractmethod
    def turns(self, request: GuardRequest) -> list[tuple[str, str, tuple[bytes, ...]]]:
        """The guard's conversation as (role, text, images), oldest first."""

    @abstractmethod
    def parse(self, answer: str) -> tuple[Label, tuple[str, ...]]:
        """The label and categories in the guard's answer."""

    def verdict(self, answer: str, seconds: float = 0.0) -> GuardVerdict:
        label, categories = self.parse(answer)
        return GuardVerdict(label=label, categories=categories, raw=answer[:500],
                            seconds=seconds)

    def messages(self, request: GuardRequest, image_url: Any = None) -> list[dict[str, Any]]:
        """The OpenAI chat messages for `request`; images become `image_url(bytes)` parts.
        Control tokens in the texts are neutralised (`workers.models.control_tokens`): the
        server tokenises what its template renders, and a message must not write its own
        verdict. (The in-process guard's engine does the same.)"""
        out: list[dict[str, Any]] = []
        for role, raw, images in self.turns(request):
            text = neutralise_control_tokens(raw)
            if images and image_url is not None:
                parts: list[dict[str, Any]] = [
                    {"type": "image_url", "image_url": {"url": image_url(data)}}
                    for data in images]
                parts.append({"type": "text", "text": text})
                out.append({"role": role, "content": parts})
            else:
                out.append({"role": role, "content": text})
        return out


class SeaGuardFormat(GuardFormat):
    name = "sea-guard"
    max_new_tokens = 4
    images = True

    def text(self, request: GuardRequest) -> str:
        prompt = clip(request.prompt)
        if request.response is None:
            return prompt
        return f"Human user:{prompt}\nAI assistant:{clip(request.response)}"

    def turns(self, request: GuardRequest) -> list[tuple[str, str, tuple[bytes, ...]]]:
        images = request.images if request.response is None else ()
        return [("user", self.text(request), images)]

    def parse(self, answer: str) -> tuple[Label, tuple[str, ...]]:
        return ("safe" if answer.strip().lower().startswith("safe") else "unsafe"), ()

    @staticmethod
    def card_mentions_prompt(readme: str) -> bool:
        """Whether a checkpoint's model card shows the prompt format used here."""
        return "Human user:" in readme and "AI assistant:" in readme


_SAFETY = re.compile(r"Safety:\s*(Safe|Unsafe|Controversial)", re.IGNORECASE)
_CATEGORIES = re.compile(r"Categories:\s*(.*)", re.IGNORECASE)
#: Qwen3Guard's categories, as its model card lists them.
QWEN3GUARD_CATEGORIES = (
    "Violent", "Non-violent Illegal Acts", "Sexual Content or Sexual Acts", "PII",
    "Suicide & Self-Harm", "Unethical Acts", "Politically Sensitive Topics",
    "Copyright Violation", "Jailbreak",
)
_KNOWN = {c.lower(): c for c in QWEN3GUARD_CATEGORIES}


class Qwen3GuardFormat(GuardFormat):
    name = "qwen3guard"
    max_new_tokens = 64
    images = False

    def turns(self, request: GuardRequest) -> list[tuple[str, str, tuple[bytes, ...]]]:
        turns: list[tuple[str, str, tuple[bytes, ...]]] = [("user", clip(request.prompt), ())]
        if request.response is not None:
            turns.append(("assistant", clip(request.response), ()))
        return turns

    def parse(self, answer: str) -> tuple[Label, tuple[str, ...]]:
        found = _SAFETY.search(answer)
        if found is None:
            return "unsafe", ("unreadable answer",)
        label: Label = found.group(1).lower()  # type: ignore[assignment]
        categories: list[str] = []
        listed = _CATEGORIES.search(answer)
        if listed:
            for item in listed.group(1).split("\n")[0].split(","):
                name = item.strip().strip(".")
                if name and name.lower() != "none":
                    categories.append(_KNOWN.get(name.lower(), name[:64]))
        return label, tuple(categories)


FORMATS: dict[str, GuardFormat] = {f.name: f for f in (SeaGuardFormat(), Qwen3GuardFormat())}


def format_named(name: str) -> GuardFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown guard format {name!r}; use one of {sorted(FORMATS)}") from None
