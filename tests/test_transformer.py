import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_utils.datasets.text import CharVocab
from course_utils.models import transformer

SAMPLE = "the cat sat on the mat. the dog sat on the log.\n" * 20


def _gpt(vocab_size=11, **overrides):
    torch.manual_seed(0)
    config = dict(context_length=16, d_model=32, num_heads=4, num_layers=2, dropout=0.0) | overrides
    return transformer.GPT(vocab_size, **config).eval()


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 8), (3, 2, 7, 16), (1, 1, 4)])
def test_attention_equals_sdpa(shape, masked):
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape) for _ in range(3))
    mask = transformer.causal_mask(shape[-2]) if masked else None
    out, weights = transformer.attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=masked)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(shape[:-1]))
    if masked:
        assert (weights.triu(1) == 0).all()


def test_causal_mask_is_lower_triangular():
    assert transformer.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_split_and_merge_heads_are_inverses(num_heads):
    x = torch.randn(2, 5, 8)
    heads = transformer.split_heads(x, num_heads)
    assert heads.shape == (2, num_heads, 5, 8 // num_heads)
    head_dim = 8 // num_heads
    assert torch.equal(heads[:, -1], x[:, :, -head_dim:])  # the last head is the last head_dim numbers
    assert torch.equal(transformer.merge_heads(heads), x)


def test_split_heads_refuses_an_uneven_split():
    with pytest.raises(ValueError, match="does not split into 3 heads"):
        transformer.split_heads(torch.randn(1, 2, 8), 3)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_equals_torch(causal):
    torch.manual_seed(0)
    d_model, num_heads = 16, 4
    ours = transformer.MultiHeadAttention(d_model, num_heads)
    theirs = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(ours.qkv.weight)
        theirs.in_proj_bias.copy_(ours.qkv.bias)
        theirs.out_proj.weight.copy_(ours.proj.weight)
        theirs.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(3, 6, d_model)
    mask = ~transformer.causal_mask(6) if causal else None  # nn.MultiheadAttention: True = may NOT read
    expected, _ = theirs(x, x, x, attn_mask=mask, need_weights=False)
    got, (k, v) = ours(x, causal=causal)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert k.shape == v.shape == (3, num_heads, 6, d_model // num_heads)


def test_block_layer_norm_is_torchs_and_the_block_is_residual():
    torch.manual_seed(0)
    block = transformer.Block(8, 2).eval()
    x = torch.randn(2, 4, 8) * 3 + 1
    by_hand = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(block.norm1(x), by_hand, atol=1e-5, rtol=1e-5)
    for layer in (block.attention.proj, block.mlp[2]):  # both branches add zero: the block is the identity
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    assert torch.equal(block(x)[0], x)


def test_gpt_is_causal_and_shaped():
    model = _gpt()
    ids = torch.randint(0, 11, (2, 10))
    logits, cache = model(ids)
    assert logits.shape == (2, 10, 11)
    assert len(cache) == 2 and cache[0][0].shape == (2, 4, 10, 8)
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    torch.testing.assert_close(model(changed)[0][:, :6], logits[:, :6])  # the future does not leak
    with pytest.raises(ValueError, match="the model knows 16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_the_cache_gives_the_same_logits_as_the_whole_sequence():
    model = _gpt()
    ids = torch.randint(0, 11, (2, 12))
    whole, _ = model(ids)
    logits, cache = model(ids[:, :5])
    steps = [logits]
    for i in range(5, 12):
        logits, cache = model(ids[:, i:i + 1], cache)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, atol=1e-5, rtol=1e-5)


def test_generate_with_and_without_cache_writes_the_same_text_past_the_context():
    vocab = CharVocab.from_text(SAMPLE)
    model = _gpt(len(vocab))
    texts = [transformer.generate(model, vocab, "the c", 40, "cpu", temperature=1.5, top_k=5, use_cache=use_cache,
                                  generator=torch.Generator().manual_seed(0)) for use_cache in (True, False)]
    assert texts[0] == texts[1] and texts[0].startswith("the c") and len(texts[0]) == 45
    with pytest.raises(ValueError, match="top_k"):
        transformer.generate(model, vocab, "the", 3, "cpu", top_k=99)


def test_sinusoidal_positions():
    encoding = transformer.sinusoidal_positions(10, 6)
    assert encoding.shape == (10, 6)
    assert torch.equal(encoding[0], torch.tensor([0.0, 1.0] * 3))
    assert math.isclose(encoding[3, 2].item(), math.sin(3 / 10000 ** (2 / 6)), rel_tol=1e-5)


def test_random_windows_are_shifted_by_one():
    ids = torch.arange(100)
    inputs, targets = transformer.random_windows(ids, 4, 10, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (4, 10)
    assert torch.equal(targets, inputs + 1) and torch.equal(inputs[:, 1:], inputs[:, :-1] + 1)


def test_evaluate_gpt_scores_every_target_once():
    model = _gpt()
    ids = torch.randint(0, 11, (53,))
    # a model that ignores its input scores every target with the same distribution: the mean is exact
    for parameter in model.parameters():
        nn.init.zeros_(parameter)
    with torch.no_grad():
        model.head.bias.copy_(torch.arange(11.0))
    expected = F.cross_entropy(torch.arange(11.0).expand(52, 11), ids[1:]).item()
    assert math.isclose(transformer.evaluate_gpt(model, ids, "cpu", batch_size=2), expected, rel_tol=1e-6)
