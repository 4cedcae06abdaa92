"""Completion log-probs: chunked and direct paths equal the naive full-logits computation."""
import pytest
import torch

from trainer.kto.logprobs import completion_logps, token_log_probs


def naive_completion_logps(hidden, input_ids, target_mask, weight, bias):
    logits = hidden @ weight.T + (0 if bias is None else bias)          # [B, T, V], the thing we avoid
    token_logps = logits.log_softmax(-1)[:, :-1].gather(2, input_ids[:, 1:, None]).squeeze(2)
    return (token_logps * target_mask[:, 1:]).sum(1)


def make_inputs(seed, with_bias):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 9, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(50, generator=generator, dtype=torch.float64, requires_grad=True) if with_bias else None
    input_ids = torch.randint(0, 50, (3, 9), generator=generator)
    target_mask = torch.zeros(3, 9, dtype=torch.bool)
    target_mask[0, 4:9] = True   # prompt of 4, completion of 5
    target_mask[1, 2:6] = True   # right padding after position 5
    target_mask[2, 7:9] = True
    return hidden, input_ids, target_mask, weight, bias


@pytest.mark.parametrize("chunk_elements", [10**9, 120, 50])  # one chunk, several chunks, one row per chunk
@pytest.mark.parametrize("with_bias", [False, True])
def test_values_and_gradients_match_naive(chunk_elements, with_bias):
    hidden, input_ids, target_mask, weight, bias = make_inputs(0, with_bias)
    ours = completion_logps(hidden, input_ids, target_mask, weight, bias, chunk_elements=chunk_elements)
    naive = naive_completion_logps(hidden, input_ids, target_mask, weight, bias)
    assert torch.allclose(ours.double(), naive, atol=1e-5)

    upstream = torch.tensor([0.3, -1.0, 2.0])
    grads = torch.autograd.grad((ours * upstream).sum(), [hidden, weight] + ([bias] if with_bias else []))
    expected = torch.autograd.grad((naive * upstream.double()).sum(), [hidden, weight] + ([bias] if with_bias else []))
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-5)


def test_prompt_and_padding_positions_do_not_count():
    hidden, input_ids, target_mask, weight, bias = make_inputs(1, False)
    before = completion_logps(hidden, input_ids, target_mask, weight, bias)
    changed = input_ids.clone()
    changed[1, 7:] = (changed[1, 7:] + 1) % 50   # padding tokens after the completion
    changed[0, 1:3] = (changed[0, 1:3] + 1) % 50  # prompt tokens (the last prompt token still conditions nothing)
    after = completion_logps(hidden, changed, target_mask, weight, bias)
    assert torch.equal(before, after)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_only_one_chunk_of_logits_exists_at_a_time(dtype, monkeypatch):
    """With room for one row of logits, forward and backward never project more than one row at once."""
    from trainer.kto import logprobs

    hidden, input_ids, target_mask, weight, _ = make_inputs(2, False)
    states = hidden.detach()[0, :5].to(dtype).requires_grad_()
    weight = weight.detach().to(dtype).requires_grad_()
    projected_rows = []
    original = logprobs._chunk_logits

    def spy(x, w, b, buffer):
        projected_rows.append(x.shape[0])
        return original(x, w, b, buffer)

    monkeypatch.setattr(logprobs, "_chunk_logits", spy)
    token_log_probs(states, weight, None, input_ids[0, 1:6], chunk_elements=50).sum().backward()
    assert projected_rows == [1] * 10  # 5 rows forward, 5 rows recomputed in backward


def test_under_bf16_autocast_grads_reach_float32_weights_and_stay_close():
    """The CUDA path trains float32 weights under bf16 autocast; CPU autocast runs the same code."""
    hidden, input_ids, target_mask, weight, _ = make_inputs(3, False)
    hidden32 = hidden.detach().float().requires_grad_()
    weight32 = weight.detach().float().requires_grad_()
    exact = completion_logps(hidden32, input_ids, target_mask, weight32, None, chunk_elements=120)
    exact_grad = torch.autograd.grad(exact.sum(), weight32)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = completion_logps(hidden32, input_ids, target_mask, weight32, None, chunk_elements=120)
    assert low.dtype == torch.float32  # log-softmax stays in float32
    low_grad = torch.autograd.grad(low.sum(), weight32)[0]
    assert low_grad.dtype == torch.float32
    assert torch.allclose(low, exact, rtol=0.05, atol=0.5)
    assert torch.allclose(low_grad, exact_grad, rtol=0.1, atol=0.1)
