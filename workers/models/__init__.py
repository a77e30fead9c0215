"""The models a worker hosts: chat, speech and guard, behind one host contract.

    host.py            `ModelHost` (load, warm-up, health), `HostHealth`, `ModelHosts`
    batching.py        the one batcher of every in-process model
    openai_api.py      what every host on an OpenAI-compatible server shares
    control_tokens.py  chat-template control tokens, neutralised before any model reads a text
    failure.py         the paragraph for a model that will not load
    chat/              the chat model: `base` (the contract: GenerationRequest, GenerationResult,
                       ChatTurn), `transformers` (in process), `openai` (a server)
    speech/            the speech recogniser: `base` (Transcript), `transformers` (Whisper),
                       `openai` (a transcription server)
    guard/             the guard: `base` (GuardRequest, GuardVerdict), `formats`, `keywords`,
                       `transformers`, `openai`

The composition root (`bot.composition.Services.models`) builds the hosts the settings name;
a worker warms them up and publishes their health (`workers.lifecycle`).
"""
