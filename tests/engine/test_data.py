"""Rows to tokens (as TRL tokenises), KL pairs, length grouping and sharding."""
import pytest

from trainer.kto.data import (collate, kl_pairs, parse_rows, plan_batches, shard, tokenize_rows)
from trainer.kto.modeling import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(tiny_model)


def tokenize(tokenizer, rows, max_length=512, max_prompt_length=256):
    return tokenize_rows(parse_rows(rows), tokenizer, max_length=max_length, max_prompt_length=max_prompt_length)


def test_plain_text_gets_eos_and_only_completion_tokens_are_targets(tokenizer):
    [example] = tokenize(tokenizer, [{"prompt": "Tell me about the lake.", "completion": " The fox sleeps.",
                                      "desirable": True}])
    assert example.completion_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(example.prompt_ids) == "Tell me about the lake."
    assert tokenizer.decode(example.completion_ids, skip_special_tokens=True) == " The fox sleeps."


def test_existing_eos_is_not_doubled(tokenizer):
    [example] = tokenize(tokenizer, [{"prompt": "Hi.", "completion": " Yes.<|end|>", "desirable": False}])
    assert example.completion_ids.count(tokenizer.eos_token_id) == 1


def test_chat_rows_use_the_template_and_accept_a_string_completion(tokenizer):
    messages = [{"role": "user", "content": "Tell me about the lake."}]
    as_string, as_message = tokenize(tokenizer, [
        {"prompt": messages, "completion": "The fox sleeps.", "desirable": True},
        {"prompt": messages, "completion": [{"role": "assistant", "content": "The fox sleeps."}], "desirable": True},
    ])
    assert as_string == as_message
    assert tokenizer.decode(as_string.prompt_ids).endswith("<|assistant|>\n")
    assert tokenizer.decode(as_string.completion_ids) == "The fox sleeps.<|end|>"


def test_prompt_is_cut_from_the_left_and_completion_fits_max_length(tokenizer):
    long_prompt = " ".join(["word"] * 40) + " END"
    [example] = tokenize(tokenizer, [{"prompt": long_prompt, "completion": " a b c d e f g h i j", "desirable": True}],
                         max_length=16, max_prompt_length=6)
    assert len(example.prompt_ids) == 6
    assert tokenizer.decode(example.prompt_ids).endswith(" END")
    assert len(example) == 16
    assert tokenizer.decode(example.completion_ids).startswith(" a b")


@pytest.mark.parametrize("row,message", [
    ({"prompt": "x", "completion": "y"}, "row 0: missing desirable"),
    ({"prompt": "x", "completion": "y", "desirable": "yes"}, "must be true or false"),
    ({"prompt": 3, "completion": "y", "desirable": True}, "prompt must be a string"),
    ({"prompt": [{"role": "user"}], "completion": "y", "desirable": True}, "prompt must be a string"),
    ({"prompt": "x", "completion": [{"role": "assistant", "content": "y"}], "desirable": True}, "needs a chat"),
])
def test_bad_rows_are_named(row, message):
    with pytest.raises(ValueError, match=message):
        parse_rows([row])


def test_label_column_is_accepted():
    [row] = parse_rows([{"prompt": "x", "completion": "y", "label": False}])
    assert row.desirable is False


def test_kl_pairs_rotate_completions_by_one_within_the_batch(tokenizer):
    examples = tokenize(tokenizer, [{"prompt": f"P{i}.", "completion": f" C{i}.", "desirable": i % 2 == 0}
                                    for i in range(4)])
    batch = [2, 0, 3]
    pairs = kl_pairs(examples, batch, max_length=512)
    assert [p for p, _ in pairs] == [examples[i].prompt_ids for i in batch]
    assert [c for _, c in pairs] == [examples[3].completion_ids, examples[2].completion_ids, examples[0].completion_ids]


def test_length_grouping_reduces_padding_and_is_seeded():
    lengths = [(i * 37) % 200 + 5 for i in range(256)]

    def padding(batches):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)

    grouped = plan_batches(lengths, 8, seed=1, shuffle=True, group_by_length=True)
    plain = plan_batches(lengths, 8, seed=1, shuffle=True, group_by_length=False)
    assert sorted(i for b in grouped for i in b) == list(range(256))
    assert padding(grouped) < padding(plain) / 4
    assert grouped == plan_batches(lengths, 8, seed=1, shuffle=True, group_by_length=True)
    assert grouped != plan_batches(lengths, 8, seed=2, shuffle=True, group_by_length=True)


def test_a_tail_of_one_joins_the_previous_batch():
    batches = plan_batches([5] * 9, 4, seed=0, shuffle=False, group_by_length=False)
    assert [len(b) for b in batches] == [4, 5]


def test_under_ddp_a_tail_too_small_for_every_process_is_merged():
    """2 processes need 2 examples each: a tail of 3 joins the previous batch, so no rank gets 1."""
    batches = plan_batches([5] * 11, 8, seed=0, shuffle=False, group_by_length=False, min_size=4)
    assert [len(b) for b in batches] == [11]
    assert all(len(shard(b, rank, 2)) >= 2 for b in batches for rank in range(2))


def test_shards_cover_the_batch_in_order():
    batch = list(range(7))
    parts = [shard(batch, rank, 3) for rank in range(3)]
    assert parts == [[0, 1, 2], [3, 4], [5, 6]]


def test_collate_pads_right_and_marks_completion_tokens():
    padded = collate([([1, 2], [3, 4, 5]), ([6], [7])], pad_id=0)
    assert padded.input_ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 0, 0, 0]]
    assert padded.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert padded.target_mask.tolist() == [[False, False, True, True, True], [False, True, False, False, False]]
