"""FastDecoder against Hugging Face: the same tokens and logits on tiny random Llama, Qwen2
and Mistral models, the sampling and stopping controls, and (``real``) the embedded model's
answer and perplexity with the recommended weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

from agent.errors import ModelError  # noqa: E402
from agent.models.fastbench import PERPLEXITY_TEXT, perplexity  # noqa: E402
from agent.models.fastpath import DEFAULT_WEIGHTS, FastDecoder  # noqa: E402
from agent.options import GenerationOptions  # noqa: E402

VOCAB = 256
GREEDY = GenerationOptions(temperature=0, repetition_penalty=1.0, max_new_tokens=24)
_MODELS: dict[tuple[str, str], object] = {}


def tiny(family: str = "llama", **overrides):
    """A tiny randomly initialised model (built once per configuration)."""
    key = (family, repr(sorted(overrides.items())))
    if key not in _MODELS:
        config_cls, model_cls = {
            "llama": (tf.LlamaConfig, tf.LlamaForCausalLM),
            "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
            "mistral": (tf.MistralConfig, tf.MistralForCausalLM),
        }[family]
        kwargs = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
        if family == "mistral":
            kwargs["sliding_window"] = None
        kwargs.update(overrides)
        torch.manual_seed(0)
        model = model_cls(config_cls(**kwargs)).eval()
        with torch.no_grad():  # larger logits than the default init, so greedy choices are clear
            model.lm_head.weight.mul_(8.0)
        model.generation_config.eos_token_id = None  # HF generate runs to max_new_tokens, like run()
        _MODELS[key] = model
    return _MODELS[key]


def prompt(n: int, seed: int = 0) -> list[int]:
    return torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def hf_logits(model, ids: list[int]):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def hf_greedy(model, ids: list[int], n: int, **kwargs) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                             pad_token_id=0, **kwargs)
    return out[0, len(ids):].tolist()


def run(decoder: FastDecoder, ids: list[int], options: GenerationOptions = GREEDY, **kwargs) -> list[int]:
    kwargs.setdefault("eos_token_ids", ())
    return list(decoder.generate(ids, options, **kwargs))


# -- exactness against Hugging Face ------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_fp32_tokens_and_logits_equal_hf(family):
    model = tiny(family)
    decoder = FastDecoder(model, weights="fp32")
    ids = prompt(20)
    torch.testing.assert_close(decoder.logits(ids), hf_logits(model, ids), atol=1e-4, rtol=1e-4)
    assert run(decoder, ids) == hf_greedy(model, ids, GREEDY.max_new_tokens)


def test_fp32_decode_step_logits_equal_hf_at_every_position():
    model = tiny("qwen2")  # q/k/v biases
    decoder = FastDecoder(model, weights="fp32")
    ids = prompt(40, seed=1)
    ref = hf_logits(model, ids)
    decoder.logits(ids[:8])  # prefill 8 tokens, then feed the rest one at a time
    with torch.inference_mode():
        for pos in range(8, len(ids)):
            torch.testing.assert_close(decoder._decode(ids[pos], pos), ref[pos], atol=1e-4, rtol=1e-4)


def test_llama3_rope_scaling_and_attention_bias_equal_hf():
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    model = tiny("llama", rope_parameters=rope, attention_bias=True, mlp_bias=True)
    decoder = FastDecoder(model, weights="fp32")
    ids = prompt(100, seed=2)
    torch.testing.assert_close(decoder.logits(ids), hf_logits(model, ids), atol=1e-4, rtol=1e-4)
    assert run(decoder, ids) == hf_greedy(model, ids, GREEDY.max_new_tokens)


def test_long_prompt_spans_prefill_chunks_and_cache_growth():
    model = tiny("llama")
    decoder = FastDecoder(model, weights="fp32")
    ids = prompt(600, seed=3)  # > one 512-row chunk, > two 256-position cache steps
    torch.testing.assert_close(decoder.logits(ids), hf_logits(model, ids), atol=1e-4, rtol=1e-4)
    decoder.reset()
    assert run(decoder, ids, GREEDY.model_copy(update={"max_new_tokens": 6})) == hf_greedy(model, ids, 6)


def test_a_prompt_extending_the_last_one_reuses_the_cache():
    model = tiny("llama")
    decoder = FastDecoder(model, weights="fp32")
    first = prompt(30, seed=4)
    reply = run(decoder, first)
    second = first + reply + prompt(10, seed=5)  # the next chat turn
    assert run(decoder, second) == run(FastDecoder(model, weights="fp32"), second) == hf_greedy(model, second, 24)
    changed = second[:5] + [7] + second[6:]  # a change early in the prompt: no stale reuse
    assert run(decoder, changed) == hf_greedy(model, changed, 24)


# max |logit error| / max |logit|, teacher-forced argmax agreement, free-running greedy tokens
# equal (of 24; random weights on a 4-bit grid drift too far for a free-running comparison)
BOUNDS = {"bf16": (0.03, 0.9, 12), "int8": (0.03, 0.9, 12), "int4": (0.15, 0.75, 0)}


@pytest.mark.parametrize("weights", ["bf16", "int8", "int4"])
def test_low_precision_weights_stay_close(weights):
    max_err, min_agree, min_equal = BOUNDS[weights]
    model = tiny("llama")
    decoder = FastDecoder(model, weights=weights)
    assert decoder.weights == weights
    ids = prompt(64, seed=6)
    ref, got = hf_logits(model, ids), decoder.logits(ids)
    assert float((got - ref).abs().max()) < max_err * float(ref.abs().max())
    assert float((got.argmax(-1) == ref.argmax(-1)).float().mean()) >= min_agree
    # the decode path (bf16 activations) too: teacher-forced argmax agreement
    decoder.logits(ids[:4])
    with torch.inference_mode():
        agree = [int(decoder._decode(ids[p], p).argmax()) == int(ref[p].argmax()) for p in range(4, len(ids))]
    assert sum(agree) >= min_agree * len(agree)
    if min_equal:
        tokens, expected = run(decoder, ids[:20]), hf_greedy(model, ids[:20], 24)
        assert sum(a == b for a, b in zip(tokens, expected, strict=True)) >= min_equal


def _snap_to_q4_grid(model) -> None:
    """Put every layer weight on a 4-bit grid in groups of 32, as a Q4_1 GGUF stores it."""
    with torch.no_grad():
        for layer in model.model.layers:
            for linear in (*[getattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")],
                           layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
                w = linear.weight.view(linear.weight.shape[0], -1, 32)
                lo, hi = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
                d = ((hi - lo) / 15).half().float()
                linear.weight.copy_((torch.round((w - lo) / d).clamp(0, 15) * d + lo.half().float()).view_as(linear.weight))


def test_auto_picks_int4_only_where_it_is_lossless():
    assert FastDecoder(tiny("llama")).weights == "int8"  # random weights: int4 would lose precision
    model = tiny("llama", num_hidden_layers=1)
    _snap_to_q4_grid(model)
    decoder = FastDecoder(model)
    assert decoder.weights == "int4"
    ids = prompt(32, seed=11)
    ref = hf_logits(model, ids)
    # only the output head (int8) and bf16-rounded group scales differ from the fp32 model
    assert float((decoder.logits(ids) - ref).abs().max()) < 0.03 * float(ref.abs().max())


# -- sampling and stopping -------------------------------------------------------------------


def test_sampling_with_a_seed_is_reproducible():
    decoder = FastDecoder(tiny(), weights="fp32")
    ids = prompt(12)
    for opts in (dict(temperature=1.0, top_k=0, top_p=1.0), dict(temperature=0.8, top_k=50, top_p=0.9),
                 dict(temperature=1.3, top_k=0, top_p=0.95)):
        options = GenerationOptions(seed=7, max_new_tokens=16, **opts)
        assert run(decoder, ids, options) == run(decoder, ids, options)
    outs = {tuple(run(decoder, ids, GenerationOptions(temperature=1.5, top_k=0, top_p=1.0, seed=s, max_new_tokens=16)))
            for s in range(3)}
    assert len(outs) > 1


def test_top_k_1_and_a_tiny_nucleus_equal_greedy():
    decoder = FastDecoder(tiny(), weights="fp32")
    ids = prompt(12, seed=8)
    greedy = run(decoder, ids)
    assert run(decoder, ids, GenerationOptions(temperature=0.9, top_k=1, repetition_penalty=1.0, seed=3,
                                               max_new_tokens=24)) == greedy
    assert run(decoder, ids, GenerationOptions(temperature=0.9, top_k=0, top_p=1e-6, repetition_penalty=1.0,
                                               seed=3, max_new_tokens=24)) == greedy


def test_repetition_penalty_matches_hf():
    model = tiny()
    decoder = FastDecoder(model, weights="fp32")
    ids = prompt(16, seed=9)
    options = GenerationOptions(temperature=0, repetition_penalty=1.5, max_new_tokens=24)
    assert run(decoder, ids, options) == hf_greedy(model, ids, 24, repetition_penalty=1.5)
    assert run(decoder, ids, options) != run(decoder, ids)


def test_max_new_tokens_should_stop_and_eos_end_the_stream():
    decoder = FastDecoder(tiny(), weights="fp32")
    ids = prompt(10, seed=10)
    assert len(run(decoder, ids, GREEDY.model_copy(update={"max_new_tokens": 5}))) == 5
    assert decoder.last_stop_reason == "length"
    polls = []
    out = run(decoder, ids, should_stop=lambda: polls.append(1) or len(polls) > 3)
    assert len(out) == 3 and decoder.last_stop_reason == "cancelled"
    full = run(decoder, ids)
    stop_at = full[4]
    assert run(decoder, ids, eos_token_ids={stop_at}) == full[: full.index(stop_at)]
    assert decoder.last_stop_reason == "eos"
    assert decoder.eos_token_ids == frozenset({2})  # the model's own, used by default


def test_the_context_limit_ends_generation():
    decoder = FastDecoder(tiny(), weights="fp32", max_seq_len=40)
    assert len(run(decoder, prompt(30), GREEDY)) == 11  # positions 30..39 decoded, one more sampled
    assert decoder.last_stop_reason == "context"
    with pytest.raises(ModelError, match="at most 40"):
        decoder.generate(prompt(40), GREEDY)


def test_a_superseded_generator_fails_clearly():
    decoder = FastDecoder(tiny(), weights="fp32")
    old = decoder.generate(prompt(10), GREEDY, eos_token_ids=())
    next(old)
    run(decoder, prompt(12, seed=1))
    with pytest.raises(ModelError, match="newer generate"):
        next(old)


# -- what it supports ------------------------------------------------------------------------


def test_unsupported_models_are_refused():
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=1, n_head=4))
    yarn = tiny("llama", rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                          "original_max_position_embeddings": 256})
    sliding = tiny("qwen2", use_sliding_window=True, sliding_window=32, max_window_layers=0)
    for model in (gpt2, yarn, sliding):
        assert not FastDecoder.supports(model)
        with pytest.raises(ModelError, match="cannot run this model"):
            FastDecoder(model)
    assert FastDecoder.supports(tiny("qwen2")) and FastDecoder.supports(tiny("mistral"))


def test_a_mistral_sliding_window_caps_the_context_instead():
    model = tiny("mistral", sliding_window=64)
    assert FastDecoder.supports(model)
    assert FastDecoder(model, weights="fp32").max_seq_len == 64


def test_bad_arguments_are_clear_errors():
    decoder = FastDecoder(tiny(), weights="fp32")
    with pytest.raises(ModelError, match="unknown weights mode"):
        FastDecoder(tiny(), weights="int3")
    with pytest.raises(ModelError, match="empty"):
        decoder.generate([], GREEDY)
    with pytest.raises(ModelError, match="outside the vocabulary"):
        decoder.generate([1, VOCAB + 5], GREEDY)


# -- the real default model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.models.embedded import ensure_converted

    path = ensure_converted()
    return AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval(), AutoTokenizer.from_pretrained(path)


@pytest.mark.real
def test_real_model_answers_and_keeps_its_perplexity(smollm2):
    model, tok = smollm2
    decoder = FastDecoder(model, weights=DEFAULT_WEIGHTS)
    assert decoder.weights == "int4"  # the embedded GGUF is Q4_1: int4 holds it losslessly
    chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   add_generation_prompt=True, tokenize=False)
    ids = tok(chat, add_special_tokens=False)["input_ids"]
    answer = tok.decode(list(decoder.generate(ids, GenerationOptions(temperature=0, max_new_tokens=24))))
    assert "Paris" in answer

    text = tok(PERPLEXITY_TEXT)["input_ids"]
    ref = hf_logits(model, text)
    assert abs(perplexity(decoder.logits(text), text) / perplexity(ref, text) - 1) < 0.05
    # the decode kernels (bf16 activations), teacher-forced one token at a time over a stretch
    start, end = 16, 112
    decoder.logits(text[:start])
    with torch.inference_mode():
        steps = torch.stack([decoder._decode(text[p], p) for p in range(start, end)])
    assert abs(perplexity(steps, text[start:end]) / perplexity(ref[start:end], text[start:end]) - 1) < 0.05


def test_weight_bytes_counts_what_the_decode_kernels_read():
    """The bandwidth bound in `llmos bench` divides by these bytes: fp32 reads about the
    model's matrices (the embedding is read one row a token), int8 about a quarter, int4 less."""
    model = tiny("llama")
    matrices = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed_tokens" not in n)
    if model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr():
        matrices += model.lm_head.weight.numel()  # tied: the head reads the whole table
    fp32 = FastDecoder(model, weights="fp32").weight_bytes
    assert 4 * matrices <= fp32 < 4 * matrices * 1.05
    int8 = FastDecoder(model, weights="int8").weight_bytes
    assert matrices <= int8 < 0.3 * fp32
    assert FastDecoder(model, weights="int4").weight_bytes < int8


def _saved_tiny(tmp_path):
    """A tiny model saved to a folder and loaded back, as load_model loads local models."""
    folder = tmp_path / "model"
    tiny("llama").save_pretrained(folder)
    return tf.LlamaForCausalLM.from_pretrained(folder).eval()


def test_packed_weights_are_cached_and_reused(tmp_path, monkeypatch):
    import agent.models.fastpath as fastpath

    model, cache = _saved_tiny(tmp_path), tmp_path / "cache"
    first = FastDecoder(model, weights="int8", cache_dir=cache)
    from agent.models.fastquant import kernel_isa

    files = list((cache / "fast").glob(f"*-int8-{kernel_isa().lower()}.safetensors"))
    assert len(files) == 1
    ids = prompt(24, seed=3)
    expected = first.logits(ids)

    def no_packing(*args, **kwargs):
        raise AssertionError("packed again although the cache holds these weights")

    monkeypatch.setattr(fastpath, "pack_layers", no_packing)
    second = FastDecoder(model, weights="int8", cache_dir=cache)
    assert torch.equal(second.logits(ids), expected)
    assert run(second, ids[:8]) == run(first, ids[:8])


def test_a_damaged_or_foreign_cache_file_is_packed_afresh(tmp_path):
    model, cache = _saved_tiny(tmp_path), tmp_path / "cache"
    expected = FastDecoder(model, weights="int8", cache_dir=False).logits(prompt(16))
    FastDecoder(model, weights="int8", cache_dir=cache)
    (path,) = (cache / "fast").glob("*.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn write
    assert torch.equal(FastDecoder(model, weights="int8", cache_dir=cache).logits(prompt(16)), expected)
    # rewritten whole: the next start reads it again
    assert torch.equal(FastDecoder(model, weights="int8", cache_dir=cache).logits(prompt(16)), expected)
    # other weights in the same folder (a new checkpoint): a new key, never the old file
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.mul_(2.0)
    model.save_pretrained(tmp_path / "model")
    fresh = FastDecoder(model, weights="int8", cache_dir=cache)
    assert not torch.equal(fresh.logits(prompt(16)), expected)
    assert torch.equal(fresh.logits(prompt(16)), FastDecoder(model, weights="int8", cache_dir=False).logits(prompt(16)))


def test_fp32_weights_are_not_cached(tmp_path):
    FastDecoder(_saved_tiny(tmp_path), weights="fp32", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "fast").exists()


def _drive(chooser, seconds_for, steps):
    """Run ``steps`` decode steps whose duration depends on the thread count; the counts used."""
    used = []
    for _ in range(steps):
        count = chooser.next()
        used.append(count)
        chooser.record(seconds_for(count))
    return used


def test_step_threads_keeps_two_threads_when_they_are_faster():
    from agent.models.fastquant import StepThreads

    chooser = StepThreads(2, probe=3, period=32)
    used = _drive(chooser, lambda n: 0.02 if n == 2 else 0.03, 200)
    assert chooser.choice == 2
    assert used.count(1) <= 3 * (1 + 200 // 32)  # only the probes run on one thread


def test_step_threads_falls_back_to_one_thread_on_a_busy_machine_and_probes_ever_less():
    from agent.models.fastquant import StepThreads

    chooser = StepThreads(2, probe=3, period=32, max_period=512)
    used = _drive(chooser, lambda n: 0.5 if n == 2 else 0.03, 2000)  # a second thread keeps waiting
    assert chooser.choice == 1
    # each round stops its two-thread probe after one slow step, and the rounds space out
    assert used.count(2) <= 12
    assert chooser.period == 512


def test_step_threads_follows_the_machine_when_the_load_goes_away():
    from agent.models.fastquant import StepThreads

    chooser = StepThreads(2, probe=3, period=32, max_period=64)
    _drive(chooser, lambda n: 0.5 if n == 2 else 0.03, 300)
    assert chooser.choice == 1
    _drive(chooser, lambda n: 0.02 if n == 2 else 0.03, 300)  # the other job ended
    assert chooser.choice == 2


def test_a_quick_probe_spares_the_costly_two_thread_step_probes():
    from agent.models.fastquant import StepThreads

    asked = []
    busy = {"now": True}

    def probe(many: int) -> int:
        asked.append(many)
        return 1 if busy["now"] else many

    chooser = StepThreads(2, probe=3, period=32, max_period=64, probe_threads=probe)
    used = _drive(chooser, lambda n: 0.5 if n == 2 else 0.03, 300)
    assert chooser.choice == 1 and used.count(2) == 0 and asked  # no slow two-thread step at all
    busy["now"] = False  # the other job ended: the probe lets the step probes run again
    _drive(chooser, lambda n: 0.02 if n == 2 else 0.03, 300)
    assert chooser.choice == 2


def test_thread_probe_wants_several_threads_only_when_their_worst_run_wins(monkeypatch):
    from agent.models.fastquant import ThreadProbe

    probe = ThreadProbe(ttl_s=0.0)
    runs = {1: [0.4, 0.41, 0.42], 2: [0.2, 0.21, 0.2, 0.22, 0.2]}
    monkeypatch.setattr(probe, "_time", lambda n, best: min(runs[n]) if best else max(runs[n]))
    assert probe.threads(2) == 2
    runs[2] = [0.2, 0.2, 0.2, 0.2, 4.0]  # one run met a descheduled thread: a prefill would meet hundreds
    assert probe.threads(2) == 1
    assert probe.threads(1) == 1
    real = ThreadProbe()  # the real product runs and answers one of the two
    assert real.threads(2) in (1, 2) and real.threads(2) == real.threads(2)


def test_step_threads_with_one_thread_has_nothing_to_choose():
    from agent.models.fastquant import StepThreads

    chooser = StepThreads(1)
    assert set(_drive(chooser, lambda n: 0.01, 50)) == {1}


def test_auto_threads_decode_the_same_tokens():
    model = tiny("llama")
    ids = prompt(12, seed=4)
    fixed = run(FastDecoder(model, weights="int8", threads=1), ids)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        auto = FastDecoder(model, weights="int8", threads="auto")
        assert run(auto, ids) == fixed and run(auto, ids) == fixed
        assert auto._chooser is not None and auto._chooser.many == 2  # choosing between 1 and the 2 threads
    finally:
        torch.set_num_threads(torch_threads)


def test_int4_grid_is_recognised_through_bf16_storage_rounding():
    """A Q4_1 checkpoint stored in bf16 (the embedded model) is still on the 4-bit grid up to
    bf16's rounding, so auto picks int4 for it; weights off any grid are not taken for it."""
    from types import SimpleNamespace

    from agent.models.fastquant import on_int4_grid

    def model(weight):
        linear = SimpleNamespace(weight=weight)
        layer = SimpleNamespace(self_attn=SimpleNamespace(q_proj=linear),
                                mlp=SimpleNamespace(down_proj=linear, gate_proj=linear))
        return SimpleNamespace(model=SimpleNamespace(layers=[layer]))

    g = torch.Generator().manual_seed(0)
    q = torch.randint(0, 16, (64, 4, 32), generator=g).float()
    q[..., 0], q[..., 1] = 0, 15  # as Q4_1 quantizes: the group's min and max are on the ends
    d = torch.rand(64, 4, 1, generator=g) * 0.01 + 1e-3
    m = torch.randn(64, 4, 1, generator=g) * 0.05
    on_grid = (q * d + m).view(64, 128)
    off_grid = torch.randn(64, 128, generator=g) * 0.05
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        assert on_int4_grid(model(on_grid.to(dtype)))
        assert not on_int4_grid(model(off_grid.to(dtype)))
    assert not on_int4_grid(model(on_grid.to(torch.bfloat16).float()))  # fp32 of bf16 values: no slack


@pytest.mark.real
def test_the_default_load_decodes_the_embedded_model_from_int4(real_model):
    """What `llmos ask` loads (the lean bf16 checkpoint of the Q4_1 GGUF) decodes from int4,
    as the fp32 load does: the bf16 storage once hid the 4-bit grid and it fell back to int8."""
    assert real_model.fast is not None and real_model.fast.weights == "int4"
