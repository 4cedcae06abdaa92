"""A deterministic, offline, tiny causal LM and tokenizer for tests, the quickstart and the simulation.

What it is
    A 2-layer Llama-style model (hidden 64, 0.14 M parameters) with a byte-level BPE tokenizer
    (640 tokens, so any text can be encoded) and a chat template. It is pre-trained for a few
    seconds on a corpus generated from templates, so its samples read as simple English.

The corpus
    Prompts such as "Tell me about the lake." or "Write a short story." (see ``PROMPTS`` and
    ``sample_prompts``), half in plain text and half through the chat template, each followed by
    a completion of one or two short sentences. In ``ANIMAL_RATE`` (40 %) of completions the first
    sentence is about an animal ("The little fox sleeps under the old bridge."); the other
    completions never name one ("The weather was warm and the garden was quiet.").
    Whether a completion is about an animal does not depend on the prompt.

The property a scripted annotator can judge
    ``mentions_animal(text)``: does the text name one of ``ANIMALS`` (whole words, singular or
    plural)? Fresh samples of the built model (temperature 1, 48 new tokens) mention an animal at
    about the corpus rate: 0.405 over 400 samples of 100 held-out prompts (0.38-0.44 across seeds).

What KTO does with it (measured on the 2-core CPU, 3 rounds, each: sample the current model,
label samples desirable iff they mention an animal, train one epoch from the current model with
batch 8, beta 0.1, reference = the round's starting model; rate over 400 fresh samples)
    - 64 labels a round (32 prompts x 2), learning_rate 5e-4:  0.405 -> 0.635 -> 0.833 -> 0.938
    - 16 labels a round (8 prompts x 2),  learning_rate 1e-3:  0.405 -> 0.630 -> 0.762 -> 0.818
    - 16 labels a round, learning_rate 5e-4:                   0.405 -> 0.537 -> 0.637 -> 0.693
    A round trains in about a second; the text stays readable. Learning rates of 5e-4 to 1e-3
    suit this model (the engine's default 5e-6 is meant for real models and barely moves it).

Deterministic: the same bytes every build (fixed seeds, one CPU thread while building).
Idempotent: ``build_tiny_model`` returns at once when ``out_dir`` already holds a valid build.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path

import torch

from .data import collate

BUILD_VERSION = 2
MARKER = "prospect_tiny.json"

ANIMALS = ("cat", "dog", "fox", "owl", "horse", "rabbit", "duck", "bear", "goat", "mouse", "frog", "bird")
ANIMAL_RATE = 0.4
_ANIMAL_WORDS = re.compile(r"\b(" + "|".join(ANIMALS + ("mice",)) + r")s?\b", re.IGNORECASE)

PLACES = ("lake", "garden", "market", "forest", "river", "village", "park", "kitchen", "station", "library",
          "beach", "hill")
PROMPTS = (
    "Tell me about the {place}.",
    "Write a short story.",
    "Describe a {quality} day.",
    "What did you see at the {place}?",
    "Say something about the {place}.",
    "Write one sentence about your morning.",
    "What happened yesterday?",
    "Tell me something nice.",
)

_WORDS = {
    "adj": ("little", "old", "young", "quiet", "brown", "white", "happy", "sleepy", "small", "big"),
    "animal_verb": ("sleeps", "runs", "sits", "waits", "plays", "rests", "hides", "looks around"),
    "prep": ("under", "near", "behind", "beside", "in front of"),
    "thing": ("bridge", "tree", "fence", "house", "wall", "boat", "bench", "gate"),
    "food": ("apples", "bread", "carrots", "seeds", "milk", "cheese"),
    "time": ("morning", "evening", "afternoon", "night"),
    "object": ("lamp", "chair", "table", "window", "door", "cup", "book", "clock", "road", "car"),
    "color": ("red", "blue", "green", "yellow", "grey", "white"),
    "quality": ("calm", "bright", "cold", "warm", "long", "short", "simple", "busy"),
    "weather": ("warm", "cold", "sunny", "rainy", "windy", "cloudy"),
    "state": ("quiet", "busy", "empty", "full", "clean", "dark"),
    "feeling": ("happy", "tired", "calm", "proud", "glad", "hungry"),
    "subject": ("history", "music", "the sea", "old maps", "cooking", "the stars"),
    "person": ("She", "He", "My friend", "The teacher", "Our neighbour"),
}
_ANIMAL_SENTENCES = (
    "The {adj} {animal} {animal_verb} {prep} the {thing}.",
    "A {animal} {animal_verb} {prep} the {thing} every {time}.",
    "My {animal} likes {food} and {animal_verb} all day.",
    "We saw a {adj} {animal} at the {place}.",
)
_PLAIN_SENTENCES = (
    "The {color} {object} stood {prep} the {thing}.",
    "The weather was {weather} and the {place} was {state}.",
    "We walked to the {place} in the {time}.",
    "{person} read a {quality} book about {subject}.",
    "The {object} was {color} and very {state}.",
    "{person} cooked {food} in the {place}.",
)
_ENDINGS = (
    "It was a {quality} day.",
    "Everyone felt {feeling}.",
    "Then we went home.",
    "{person} smiled.",
    "The {time} was {quality}.",
)

# Newlines are written as {{ '\n' }}: transformers renders templates with trim_blocks, which
# would drop a literal newline that follows a block tag.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "<|{{ message['role'] }}|>{{ '\\n' }}{{ message['content'] }}<|end|>"
    "{%- endfor %}"
    "{% if add_generation_prompt %}{{ '\\n' }}<|assistant|>{{ '\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|end|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>")

_SEED = 1234
_CORPUS_SIZE = 6000
_VOCAB_SIZE = 640
_STEPS = 400
_BATCH = 32


def mentions_animal(text: str) -> bool:
    """The property the scripted annotator judges: does ``text`` name an animal from ``ANIMALS``?"""
    return bool(_ANIMAL_WORDS.search(text))


def sample_prompts(count: int, seed: int = 0) -> list[str]:
    """Plain-text prompts in the style of the corpus (for simulations and demos)."""
    rng = random.Random(seed)
    return [_fill(rng.choice(PROMPTS), rng) for _ in range(count)]


def corpus(count: int = _CORPUS_SIZE, seed: int = _SEED) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of the pre-training corpus."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        prompt = _fill(rng.choice(PROMPTS), rng)
        about_animal = rng.random() < ANIMAL_RATE
        first = _fill(rng.choice(_ANIMAL_SENTENCES if about_animal else _PLAIN_SENTENCES), rng)
        completion = first if rng.random() < 0.4 else f"{first} {_fill(rng.choice(_ENDINGS), rng)}"
        pairs.append((prompt, completion))
    return pairs


def _fill(template: str, rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in _WORDS.items()}
    values.update(animal=rng.choice(ANIMALS), place=rng.choice(PLACES))
    return template.format(**values)


def is_valid_build(out_dir: str | Path) -> bool:
    out = Path(out_dir)
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("version") != BUILD_VERSION:
        return False
    weights = out / "model.safetensors"
    needed = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
    return weights.is_file() and all((out / name).is_file() for name in needed) and \
        marker.get("weights_sha256") == _sha256(weights)


def build_tiny_model(out_dir: str | Path) -> Path:
    """Build (or find) the tiny model in ``out_dir``; returns the directory. Takes a few seconds."""
    out = Path(out_dir).resolve()
    if is_valid_build(out):
        return out
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"{out} exists and is not a tiny-model build; choose an empty or new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _build(staging)
        if is_valid_build(out):  # another process finished the same build meanwhile
            shutil.rmtree(staging, ignore_errors=True)
            return out
        if out.exists():  # empty, or an older build of ours: replace it
            shutil.rmtree(out)
        os.rename(staging, out)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if is_valid_build(out):  # another process finished the same build first
            return out
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _build(staging: Path) -> None:
    pairs = corpus()
    tokenizer = _train_tokenizer(pairs)
    documents = [_document(tokenizer, prompt, completion, chat=index % 2 == 0)
                 for index, (prompt, completion) in enumerate(pairs)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same bytes on every machine size
    try:
        with torch.random.fork_rng():
            torch.manual_seed(_SEED)
            model = _pretrain(_new_model(tokenizer), tokenizer, documents)
    finally:
        torch.set_num_threads(threads)
    from .modeling import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    marker = {"version": BUILD_VERSION, "weights_sha256": _sha256(staging / "model.safetensors"),
              "animal_rate_in_corpus": ANIMAL_RATE, "animals": list(ANIMALS)}
    (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _train_tokenizer(pairs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=_VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = [f"{prompt} {completion}" for prompt, completion in pairs]
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|end|>", pad_token="<|pad|>",
                                   chat_template=CHAT_TEMPLATE, model_max_length=512)


def _document(tokenizer, prompt: str, completion: str, *, chat: bool) -> list[int]:
    if chat:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], tokenize=False)
    else:
        text = f"{prompt} {completion}{tokenizer.eos_token}"
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _new_model(tokenizer):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=eos, pad_token_id=pad)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, do_sample=True, temperature=1.0,
                                               top_k=0, top_p=1.0, max_new_tokens=48)
    return model


def _pretrain(model, tokenizer, documents: list[list[int]]):
    rng = random.Random(_SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 40) *
                                                 max(0.05, 1 - step / _STEPS))
    model.train()
    for _ in range(_STEPS):
        # Whole documents are targets: an empty "prompt" makes collate's target mask the attention mask.
        batch = collate([([], documents[rng.randrange(len(documents))]) for _ in range(_BATCH)],
                        tokenizer.pad_token_id)
        labels = batch.input_ids.masked_fill(~batch.target_mask, -100)
        loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return model


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
