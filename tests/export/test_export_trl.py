"""The kto JSONL from the API loads unchanged with `datasets` and trains a step in TRL's KTOTrainer."""
import copy
import json
import math

import pytest
import torch

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

CHAT_TEMPLATE = (
    "{% for message in messages %}<{{ message['role'] }}> {{ message['content'] }} <eos> {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


def tiny_tokenizer(corpus):
    """A word-level tokenizer built offline from the test's own words."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>", "<user>", "<assistant>", "<system>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    fast.padding_side = "left"
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_model(vocab_size):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
    )
    return LlamaForCausalLM(config)


PROMPTS = ["the sky is", "grass is", "snow is", "the sea is"]
COMPLETIONS = [" blue", " green", " purple", " loud"]  # TRL joins prompt + completion as is


@pytest.fixture
def kto_items(project, annotators, add_item, request):
    a, b, c = annotators
    chat = request.param == "chat"
    for i, (prompt, completion) in enumerate(zip(PROMPTS, COMPLETIONS)):
        good = i % 2 == 0
        content = [{"role": "user", "content": prompt}] if chat else prompt
        add_item({a: good, b: good, c: not good}, prompt=content, completion=completion)
    return chat


@pytest.mark.slow
@pytest.mark.parametrize("kto_items", ["text", "chat"], indirect=True)
def test_kto_jsonl_loads_with_datasets_and_trains_one_step(
    api_client_for, admin_user, project, kto_items, tmp_path, monkeypatch
):
    torch.set_num_threads(1)
    monkeypatch.setenv("WANDB_DISABLED", "true")
    response = api_client_for(admin_user).get(f"/api/projects/{project.pk}/export/", {"format": "jsonl", "view": "kto"})
    path = tmp_path / "kto.jsonl"
    path.write_bytes(b"".join(response.streaming_content))

    dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    exported = [json.loads(line) for line in path.read_text().splitlines()]
    assert dataset.column_names == ["prompt", "completion", "label"]
    assert dataset.to_list() == exported  # nothing to convert
    assert dataset["label"] == [True, False, True, False]
    assert trl.data_utils.is_conversational(dataset[0]) is kto_items

    tokenizer = tiny_tokenizer(PROMPTS + COMPLETIONS)
    model = tiny_model(len(tokenizer))
    before = [p.detach().clone() for p in model.parameters()]
    config = trl.KTOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=1, learning_rate=1e-3,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, max_length=32,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    reference = copy.deepcopy(model)  # built in memory, so TRL cannot reload it from a hub id
    trainer = trl.KTOTrainer(
        model=model, ref_model=reference, args=config, train_dataset=dataset, processing_class=tokenizer
    )
    result = trainer.train()

    assert result.global_step == 1
    assert math.isfinite(result.training_loss)
    assert any(not torch.equal(old, new) for old, new in zip(before, model.parameters()))
