"""The one sampler (agent.models.sampling): the fast decoder and the batching scheduler pick
the same token from the same logits and seed, never draw from torch's global RNG, and sample
the distribution transformers' rules define."""

from __future__ import annotations

import pytest
import torch

from agent.errors import InputError
from agent.models.sampling import Sampler, choose_tokens, generator_for, sample
from agent.options import GenerationOptions


class _Row:
    def __init__(self, options: GenerationOptions) -> None:
        self.options = options
        self.rng = None


def _options(**kw) -> GenerationOptions:
    return GenerationOptions(**{"temperature": 0.8, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0, **kw})


@pytest.mark.parametrize("kw", [{"seed": 7}, {"seed": 7, "top_k": 5}, {"seed": 3, "top_p": 0.8},
                                {"seed": 11, "top_k": 8, "top_p": 0.9, "repetition_penalty": 1.3}])
def test_one_sequence_and_a_batch_row_pick_the_same_tokens(kw):
    torch.manual_seed(0)
    prompt = [1, 4, 9]
    options = _options(**kw)
    single = Sampler(options, 32, prompt)
    row = _Row(options)
    seen = torch.zeros(1, 32, dtype=torch.bool)
    seen[0, prompt] = True
    for _ in range(12):
        logits = torch.randn(32)
        mine = single(logits.clone())
        tokens, errors = choose_tokens(logits[None].clone(), [row], seen)
        assert errors == {} and int(tokens[0]) == mine
        seen[0, mine] = True


def test_unseeded_requests_leave_the_global_generator_alone():
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    options = _options()
    Sampler(options, 16, [0])(torch.randn(16, generator=torch.Generator().manual_seed(0)))
    choose_tokens(torch.zeros(2, 16), [_Row(options), _Row(options)], torch.zeros(2, 16, dtype=torch.bool))
    assert torch.equal(torch.get_rng_state(), before)


def test_a_seed_repeats_its_draws_and_another_seed_does_not():
    logits = torch.zeros(1000)
    a, b = generator_for(5), generator_for(5)
    assert [sample(logits, _options(), a) for _ in range(20)] == [sample(logits, _options(), b) for _ in range(20)]
    c = generator_for(6)
    assert [sample(logits, _options(), c) for _ in range(20)] != [sample(logits, _options(), generator_for(5))
                                                                   for _ in range(20)]


def test_top_k_and_top_p_keep_exactly_the_tokens_transformers_keeps():
    logits = torch.log(torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05]))
    gen = generator_for(0)
    top2 = {sample(logits, _options(temperature=1.0, top_k=2), gen) for _ in range(300)}
    assert top2 == {0, 1}
    # mass strictly above token 2 is 0.7 < 0.75: kept; above token 3 is 0.85: dropped
    nucleus = {sample(logits, _options(temperature=1.0, top_p=0.75), gen) for _ in range(500)}
    assert nucleus == {0, 1, 2}


def test_draws_follow_the_tempered_distribution():
    probs = torch.tensor([0.6, 0.3, 0.1])
    gen = generator_for(42)
    counts = torch.zeros(3)
    n = 4000
    for _ in range(n):
        counts[sample(torch.log(probs) * 2.0, _options(temperature=2.0), gen)] += 1
    assert torch.allclose(counts / n, probs, atol=0.03)


def test_a_seed_torch_refuses_is_an_input_error_for_that_row_only():
    poisoned = _options().model_copy(update={"seed": 2**80})  # past the request bounds, as a direct caller could
    rows = [_Row(_options(seed=1)), _Row(poisoned), _Row(_options(temperature=0.0))]
    logits = torch.randn(3, 8)
    tokens, errors = choose_tokens(logits, rows, torch.zeros(3, 8, dtype=torch.bool))
    assert set(errors) == {1} and isinstance(errors[1], InputError) and "2**63" in str(errors[1])
    assert int(tokens[2]) == int(logits[2].argmax())
    with pytest.raises(InputError, match="seed"):
        generator_for(2**80)


def test_the_penalty_on_seen_ids_equals_the_penalty_over_the_vocabulary():
    from agent.models.sampling import penalize, penalize_ids

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1000, generator=g) * 4  # both signs
    ids = torch.randperm(1000, generator=g)[:137]
    seen = torch.zeros(1000, dtype=torch.bool)
    seen[ids] = True
    before = logits.clone()
    assert torch.equal(penalize_ids(logits, ids, 1.3), penalize(logits, seen, 1.3))
    assert torch.equal(logits, before)  # a new tensor; the caller's logits are untouched
