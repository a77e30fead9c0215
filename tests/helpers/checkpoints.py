"""Tiny random-weight checkpoints of the two real SEA-LION v4 VL architectures, built offline.

``build_tiny_qwen3_vl`` makes a Qwen3-VL checkpoint (the architecture of Qwen-SEA-LION-v4-4B/8B-VL) and
``build_tiny_gemma3`` a Gemma 3 one (Gemma-SEA-LION-v4-4B/27B-VL). Each writes, into ``path``, what a real
Hub checkpoint holds -- config.json, safetensors weights, generation_config.json, tokenizer files, image
(and for Qwen3-VL video) processor configs and the architecture's real chat template -- so that the
ordinary ``AutoProcessor.from_pretrained`` / ``AutoModelForImageTextToText.from_pretrained`` path loads it.
Nothing is downloaded: the tokenizer is trained here on a small built-in multilingual text, and the model
weights are random. A checkpoint is a few MB and takes a few seconds to build.

The tokenizers mirror the real ones' pipelines, because transformers v5 rebuilds a tokenizer's pipeline
from the class (``Qwen2Tokenizer`` / ``GemmaTokenizer``) and only takes vocab + merges from tokenizer.json:
Qwen's is byte-level BPE behind the Qwen2 split regex; Gemma's is SentencePiece-style BPE (spaces become
"▁") with byte fallback through the 256 ``<0xNN>`` tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = [
    "GEMMA3_CHAT_TEMPLATE",
    "QWEN3_VL_CHAT_TEMPLATE",
    "TRAINING_TEXT",
    "build_tiny_gemma3",
    "build_tiny_qwen3_vl",
    "embedding_rows",
    "random_model",
    "train_bpe",
]

# A few hundred words of the languages the bot serves (and a few neighbours), so that every script the
# tests use has merges and no test string falls back to bytes only.
TRAINING_TEXT = """\
Hello! How are you today? I am a helpful assistant for Southeast Asia. Please describe this picture.
What is the weather like in Singapore? It is hot and humid, with rain in the afternoon.
The quick brown fox jumps over the lazy dog. Tell me a short story about a cat and a river.
Can you translate this sentence into Indonesian, Malay, Thai and Vietnamese for me, please?
Thank you very much. You are welcome. Good morning, good afternoon, good evening and good night.
Selamat pagi! Apa kabar? Saya baik-baik saja, terima kasih. Tolong jelaskan gambar ini.
Bagaimana cuaca di Jakarta hari ini? Hari ini cerah dan panas, tetapi nanti sore mungkin hujan.
Saya ingin memesan nasi goreng dan es teh manis. Berapa harganya? Terima kasih banyak, sampai jumpa.
Apakah kamu bisa membantu saya menulis surat untuk kantor? Tentu saja, saya akan membantu.
Selamat petang. Apa khabar? Saya sihat, terima kasih. Boleh tolong terangkan gambar ini?
Di mana stesen bas yang paling dekat? Saya mahu pergi ke Kuala Lumpur esok pagi dengan keluarga.
Nasi lemak ialah makanan kegemaran saya. Terima kasih kerana membantu. Jumpa lagi nanti.
สวัสดีครับ คุณสบายดีไหม ผมสบายดี ขอบคุณครับ ช่วยอธิบายรูปภาพนี้หน่อยได้ไหม
วันนี้อากาศที่กรุงเทพร้อนมาก ฝนอาจจะตกตอนเย็น ฉันอยากกินข้าวผัดและต้มยำกุ้ง
ขอบคุณมากค่ะ แล้วพบกันใหม่ ภาษาไทยเป็นภาษาที่สวยงาม
Xin chào! Bạn có khỏe không? Tôi khỏe, cảm ơn bạn. Hãy mô tả bức ảnh này giúp tôi.
Thời tiết ở Hà Nội hôm nay thế nào? Trời nắng và nóng, buổi chiều có thể có mưa.
Tôi muốn ăn phở bò và uống cà phê sữa đá. Cảm ơn rất nhiều. Hẹn gặp lại.
你好！你今天怎么样？我很好，谢谢。请描述一下这张图片。新加坡的天气很热，下午常常下雨。
我想吃海南鸡饭和喝一杯咖啡。谢谢你的帮助，再见。东南亚有很多美丽的国家和语言。
Magandang umaga! Kumusta ka? Mabuti naman ako, salamat. Pakilarawan ang larawang ito.
வணக்கம்! நீங்கள் எப்படி இருக்கிறீர்கள்? நான் நலமாக இருக்கிறேன், நன்றி. இந்த படத்தை விவரிக்கவும்.
မင်္ဂလာပါ။ နေကောင်းလား။ ကျေးဇူးတင်ပါတယ်။ ဒီပုံကို ရှင်းပြပေးပါ။
ជំរាបសួរ! សុខសប្បាយទេ? ខ្ញុំសុខសប្បាយ អរគុណ។ សូមពិពណ៌នារូបភាពនេះ។
ສະບາຍດີ! ເຈົ້າສະບາຍດີບໍ? ຂອບໃຈຫຼາຍໆ. ກະລຸນາອະທິບາຍຮູບນີ້.
Numbers 0 1 2 3 4 5 6 7 8 9 10 100 2025, punctuation . , ; : ! ? ( ) [ ] " ' - _ / @ # % & * + = < > ~
"""

# --------------------------------------------------------------------------------------------------
# Chat templates, as shipped in the real checkpoints' chat_template.jinja / chat_template.json.
# --------------------------------------------------------------------------------------------------

# Qwen3-VL *Instruct* (Qwen/Qwen3-VL-4B-Instruct, -8B-Instruct; Qwen-SEA-LION-v4-*-VL builds on these),
# byte for byte: 5292 bytes, sha256 3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4.
# Images are ``{"type": "image", ...}`` content items rendered as
# ``<|vision_start|><|image_pad|><|vision_end|>``; the processor expands the single <|image_pad|> into one
# token per merged patch. The system message is only emitted when present (no default system prompt).
QWEN3_VL_CHAT_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' }}
        {%- if messages[0].content is string %}
            {{- messages[0].content }}
        {%- else %}
            {%- for content in messages[0].content %}
                {%- if 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and message.content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Gemma 3 (google/gemma-3-4b-it, -27b-it; Gemma-SEA-LION-v4-*-VL builds on these). There is no system
# role: the system text is prepended to the first user turn followed by a blank line. Roles must
# alternate user/model starting with user. Images are ``{"type": "image"}`` items rendered as
# ``<start_of_image>``, which the processor expands to
# ``\n\n<start_of_image><image_soft_token>*mm_tokens_per_image<end_of_image>\n\n``. Text is trimmed.
GEMMA3_CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

# --------------------------------------------------------------------------------------------------
# Special tokens (names as in the real tokenizers; ids are small because the vocabulary is tiny).
# --------------------------------------------------------------------------------------------------

# Qwen: all of these are added tokens in the real tokenizer; the <|...|> ones are special.
_QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
_QWEN_NON_SPECIAL_ADDED = ["<tool_call>", "</tool_call>", "<think>", "</think>"]

# Gemma: ids 0..4 are fixed in the real vocabulary (pad, eos, bos, unk, mask).
_GEMMA_BASE = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
_GEMMA_TURN = ["<start_of_turn>", "<end_of_turn>"]
_GEMMA_IMAGE = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]

_VOCAB_SIZE = 1536  # requested BPE vocabulary size (trainer stops earlier when the text runs out of pairs)


def train_bpe(backend, trainer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train the BPE ``backend`` (a ``tokenizers.Tokenizer``) on ``TRAINING_TEXT`` with ``trainer``;
    its vocabulary and merges, as the slow tokenizer classes take them."""
    backend.train_from_iterator(TRAINING_TEXT.splitlines(), trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def embedding_rows(tokenizer) -> int:
    """The vocabulary size of a model for ``tokenizer``: its length rounded up to a multiple of 64."""
    return ((len(tokenizer) + 63) // 64) * 64


def random_model(model_cls, config):
    """``model_cls(config)`` in eval mode with seeded random weights (the same on every build),
    without touching the caller's RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return model_cls(config).eval()


def _write_generation_config(path: Path, base: dict, overrides: dict | None) -> None:
    from transformers import GenerationConfig

    cfg = dict(base)
    cfg.update(overrides or {})
    GenerationConfig(**cfg).save_pretrained(path)


def _prove_loads(path: Path, model_cls_name: str, processor_cls_name: str) -> None:
    """Load the checkpoint back through the Auto classes the engine uses, and check the classes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    if type(processor).__name__ != processor_cls_name:
        raise AssertionError(f"{path}: AutoProcessor gave {type(processor).__name__}, not {processor_cls_name}")
    if type(model).__name__ != model_cls_name:
        raise AssertionError(f"{path}: AutoModel gave {type(model).__name__}, not {model_cls_name}")
    if not processor.chat_template:
        raise AssertionError(f"{path}: processor has no chat template")
    vocab = model.get_input_embeddings().weight.shape[0]
    if len(processor.tokenizer) > vocab:
        raise AssertionError(f"{path}: tokenizer has {len(processor.tokenizer)} tokens, embeddings {vocab}")


# --------------------------------------------------------------------------------------------------
# Qwen3-VL
# --------------------------------------------------------------------------------------------------


def _train_qwen_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Same pipeline as Qwen2Tokenizer builds (and as the real Qwen3 tokenizer.json): NFC, the Qwen2 split
    # regex, then byte-level mapping; byte-level BPE with the full 256-byte alphabet.
    backend = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        special_tokens=list(_QWEN_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    vocab, merges = train_bpe(backend, trainer)

    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=262144,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        extra_special_tokens=[t for t in _QWEN_SPECIAL if t not in ("<|endoftext|>", "<|im_end|>")],
    )
    tokenizer.add_tokens(_QWEN_NON_SPECIAL_ADDED)
    return tokenizer


def build_tiny_qwen3_vl(path: Path, *, generation: dict | None = None) -> Path:
    """Write a tiny random Qwen3-VL checkpoint (Qwen3VLForConditionalGeneration + Qwen3VLProcessor) to ``path``.

    Vision: patch 8, spatial merge 2 (16x16 px per LLM token), at least 2x2 and at most 16x16 tokens per image
    (min_pixels 32*32, max_pixels 256*256). Text: hidden 64, 2 layers, head_dim 32, interleaved M-RoPE.
    ``generation`` overrides keys of generation_config.json (default: greedy, eos = <|im_end|>, <|endoftext|>).
    """
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = _train_qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _QWEN_SPECIAL}

    patch, merge, temporal = 8, 2, 2
    factor = patch * merge
    image_processor = Qwen2VLImageProcessor(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=temporal,
        size={"shortest_edge": (2 * factor) ** 2, "longest_edge": (16 * factor) ** 2},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=temporal,
        size={"shortest_edge": (2 * factor) ** 2, "longest_edge": (16 * factor) ** 2 * 4},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        fps=2,
        min_frames=2,
        max_frames=8,
        cap_pixels_per_frame=True,
    )
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )

    hidden, head_dim = 64, 32
    vocab_size = embedding_rows(tokenizer)
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": head_dim,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [6, 5, 5],  # sums to head_dim / 2
                "mrope_interleaved": True,
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": temporal,
            "out_hidden_size": hidden,
            "num_position_embeddings": 64,  # 8x8 learned grid, bilinearly interpolated to any image size
            "deepstack_visual_indexes": [0, 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        # untied, as in Qwen3-VL-8B (random tied embeddings just echo the last prompt token, "\n")
        tie_word_embeddings=False,
    )
    model = random_model(Qwen3VLForConditionalGeneration, config)

    model.save_pretrained(path)
    processor.save_pretrained(path)
    _write_generation_config(
        path,
        {
            "bos_token_id": ids["<|endoftext|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
            "do_sample": False,
        },
        generation,
    )
    _prove_loads(path, "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor")
    return path


# --------------------------------------------------------------------------------------------------
# Gemma 3
# --------------------------------------------------------------------------------------------------


def _train_gemma_tokenizer():
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import GemmaTokenizer

    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    # Same pipeline as GemmaTokenizer builds (a SentencePiece BPE model converted to tokenizers): spaces
    # become "▁", BPE with byte fallback. For training only, split before each "▁" so merges stay within
    # words (the real model's merges also never span "▁" boundaries inside a merged piece's interior).
    backend = Tokenizer(BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    trainer = BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        special_tokens=_GEMMA_BASE + _GEMMA_TURN + _GEMMA_IMAGE + byte_tokens + ["\n", "\n\n", "▁"],
    )
    vocab, merges = train_bpe(backend, trainer)

    tokenizer = GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        mask_token="<mask>",
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
        spaces_between_special_tokens=False,
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
    )
    # <start_of_turn>/<end_of_turn> are special added tokens in the real tokenizer.json too.
    tokenizer.add_special_tokens(
        {"extra_special_tokens": _GEMMA_TURN}, replace_extra_special_tokens=False
    )
    return tokenizer


def build_tiny_gemma3(path: Path, *, generation: dict | None = None) -> Path:
    """Write a tiny random Gemma 3 checkpoint (Gemma3ForConditionalGeneration + Gemma3Processor) to ``path``.

    Vision: SigLIP at 32x32 px, patch 8 (4x4 patches) average-pooled to 2x2 = 4 soft tokens per image.
    Text: hidden 64, 2 layers (sliding, full), head_dim 32, tied embeddings, and a sliding window of only 16
    tokens so that ordinary test prompts exercise it (with left padding).
    ``generation`` overrides keys of generation_config.json (default: greedy, eos = <eos>, <end_of_turn>).
    """
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = _train_gemma_tokenizer()
    tid = tokenizer.convert_tokens_to_ids

    image_size, patch, mm_tokens = 32, 8, 4
    image_processor = Gemma3ImageProcessor(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=None,
    )
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        image_seq_length=mm_tokens,
    )

    hidden, head_dim = 64, 32
    vocab_size = embedding_rows(tokenizer)
    config = Gemma3Config(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": head_dim,
            "query_pre_attn_scalar": head_dim,
            "sliding_window": 16,
            "layer_types": ["sliding_attention", "full_attention"],
            "max_position_embeddings": 4096,
            "pad_token_id": tid("<pad>"),
            "eos_token_id": [tid("<eos>"), tid("<end_of_turn>")],
            "bos_token_id": tid("<bos>"),
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch,
            "vision_use_head": False,
        },
        mm_tokens_per_image=mm_tokens,
        boi_token_index=tid("<start_of_image>"),
        eoi_token_index=tid("<end_of_image>"),
        image_token_index=tid("<image_soft_token>"),
    )
    model = random_model(Gemma3ForConditionalGeneration, config)

    model.save_pretrained(path)
    processor.save_pretrained(path)
    _write_generation_config(
        path,
        {
            "bos_token_id": tid("<bos>"),
            "pad_token_id": tid("<pad>"),
            "eos_token_id": [tid("<eos>"), tid("<end_of_turn>")],
            "do_sample": False,
        },
        generation,
    )
    _prove_loads(path, "Gemma3ForConditionalGeneration", "Gemma3Processor")
    return path
