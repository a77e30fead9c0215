"""A tiny random-weight Whisper checkpoint, built offline, and the real large-v3-turbo shapes.

``build_tiny_whisper`` writes into ``path`` what a Hub Whisper checkpoint holds -- config.json,
safetensors weights, generation_config.json (``lang_to_id``, ``task_to_id``,
``no_timestamps_token_id``, ...), the tokenizer (byte-level BPE trained here on the multilingual
text of ``tests.helpers.checkpoints``, then Whisper's special tokens in Whisper's order: the
language tokens, the task tokens, ``<|notimestamps|>`` and 1501 timestamp tokens) and the
feature extractor -- so that ``pipeline("automatic-speech-recognition", model=path)`` loads it
as it loads ``openai/whisper-large-v3-turbo``: log-mel features, language detection, generation,
chunking and batching all run for real. Its weights are random, so its text is noise.

``whisper_turbo_config`` is the configuration of large-v3-turbo (32 encoder layers, 4 decoder
layers, 128 mel bins), for benchmarks that want the real compute with random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.checkpoints import embedding_rows, random_model, train_bpe

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Whisper's language tokens, in Whisper's order, for the languages the tests need.
LANGUAGES = ("en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "vi", "ta", "th", "id",
             "ms", "km", "lo", "my", "tl", "yue")
_BEFORE_LANGUAGES = ("<|endoftext|>", "<|startoftranscript|>")
_AFTER_LANGUAGES = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                    "<|nospeech|>", "<|notimestamps|>")
TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>


def _tokenizer(text_vocab: int | None = None):
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import WhisperTokenizer

    backend = Tokenizer(BPE(unk_token=None, fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=1024, min_frequency=1, show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    vocab, merges = train_bpe(backend, trainer)
    while text_vocab is not None and len(vocab) < text_vocab:  # Whisper's layout: 50257 + specials
        vocab[f"<fill{len(vocab)}>"] = len(vocab)
    specials = [*_BEFORE_LANGUAGES, *(f"<|{code}|>" for code in LANGUAGES), *_AFTER_LANGUAGES]
    for token in specials:  # right after the BPE vocabulary, as in Whisper (50257 onwards)
        vocab[token] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges, model_max_length=448,
                                 pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    return tokenizer


def build_tiny_whisper(path: Path, *, max_new_tokens: int = 24, min_new_tokens: int = 0,
                       turbo_shapes: bool = False) -> Path:
    """Write a tiny random Whisper checkpoint (d_model 32, 2+2 layers, 80 mel bins) to ``path``.

    ``max_new_tokens`` caps each 30-second window's text (the random decoder never stops early);
    ``min_new_tokens`` forces that many (benchmarks compare like with like). ``turbo_shapes``
    writes large-v3-turbo's architecture and vocabulary size instead (809M random weights).
    """
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(50257 if turbo_shapes else None)
    tid = tokenizer.convert_tokens_to_ids
    eot = tid("<|endoftext|>")
    vocab_size = embedding_rows(tokenizer)
    mel_bins = 128 if turbo_shapes else 80
    if turbo_shapes:
        config = whisper_turbo_config()
        config.vocab_size = max(config.vocab_size, vocab_size)
    else:
        config = WhisperConfig(
            vocab_size=vocab_size, num_mel_bins=80, d_model=32, encoder_layers=2,
            decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
            max_target_positions=448)
    config.update({"pad_token_id": eot, "bos_token_id": eot, "eos_token_id": eot,
                   "decoder_start_token_id": tid("<|startoftranscript|>"),
                   "begin_suppress_tokens": [eot], "suppress_tokens": []})
    model = random_model(WhisperForConditionalGeneration, config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=tid("<|startoftranscript|>"), bos_token_id=eot, eos_token_id=eot,
        pad_token_id=eot, is_multilingual=True, max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens or None,
        lang_to_id={f"<|{code}|>": tid(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={"transcribe": tid("<|transcribe|>"), "translate": tid("<|translate|>")},
        no_timestamps_token_id=tid("<|notimestamps|>"), prev_sot_token_id=tid("<|startofprev|>"),
        max_initial_timestamp_index=50, begin_suppress_tokens=[eot],
        # Text tokens only (as Whisper's own list suppresses symbols), so the noise is words.
        suppress_tokens=list(range(eot + 1, config.vocab_size)),
        return_timestamps=False)
    model.save_pretrained(path)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=mel_bins),
                                 tokenizer=tokenizer)
    processor.save_pretrained(path)
    return path


def whisper_turbo_config():
    """openai/whisper-large-v3-turbo's architecture (809M parameters), for random weights."""
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=51866, num_mel_bins=128, d_model=1280, encoder_layers=32, decoder_layers=4,
        encoder_attention_heads=20, decoder_attention_heads=20, encoder_ffn_dim=5120,
        decoder_ffn_dim=5120, max_source_positions=1500, max_target_positions=448,
        pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
        decoder_start_token_id=50258)
