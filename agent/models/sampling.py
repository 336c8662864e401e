"""The one sampler: the next token from logits the way transformers' ``generate`` picks it.

Repetition penalty over every token seen (prompt included), then greedy, or temperature,
top-k and top-p. Every request draws from a generator of its own: seeded when the request
names a seed (the same seed gives the same sample, alone or in a batch), else seeded from the
operating system's entropy; never torch's global RNG, which any other code may reseed.

Two callers share it: the fast decoder (:class:`Sampler`, one sequence) and the batching
scheduler (:func:`choose_tokens`, one row per request, where a row that cannot be sampled is
reported with its error instead of failing its neighbours).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.errors import InputError

if TYPE_CHECKING:
    import torch

    from agent.options import GenerationOptions

__all__ = ["Sampler", "choose_tokens", "generator_for", "penalize", "penalize_ids", "sample"]

_NUCLEUS_GUESS = 256
"""The top-p nucleus almost always lies within this many tokens: tried before a full sort."""


def generator_for(seed: int | None, device: Any = "cpu") -> torch.Generator:
    """A generator for one request: ``manual_seed(seed)``, or fresh entropy when ``seed`` is None."""
    import torch

    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
        return generator
    try:
        generator.manual_seed(int(seed))
    except (RuntimeError, ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"seed {seed} is not usable ({exc}): use an integer from -2**63 to 2**63-1") from exc
    return generator


def penalize(logits: torch.Tensor, seen: torch.Tensor, penalty: float | torch.Tensor) -> torch.Tensor:
    """transformers' repetition penalty: a seen token's logit divided by ``penalty`` when
    positive, multiplied when negative. ``penalty`` is a float, or one value per row as a
    ``(rows, 1)`` tensor for a batch."""
    import torch

    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)


def penalize_ids(logits: torch.Tensor, ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """:func:`penalize` for one row, given the seen tokens as ``ids`` (each once): the same
    values, computed on those entries only. Returns a new tensor."""
    import torch

    picked = logits.index_select(0, ids)
    return logits.clone().index_copy_(0, ids, torch.where(picked < 0, picked * penalty, picked / penalty))


def sample(logits: torch.Tensor, options: GenerationOptions, generator: torch.Generator) -> int:
    """One token drawn from a 1-D row of (penalized) logits with ``options``' temperature,
    top-k and top-p. Raises (RuntimeError) on logits or a temperature that give no
    distribution (NaN, inf)."""
    import torch

    logits = logits / options.temperature
    k, top_p = options.top_k, options.top_p
    if k <= 0 and top_p >= 1.0:
        return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
    if k > 0:
        vals, idx = torch.topk(logits, min(k, logits.shape[-1]))
        probs = torch.softmax(vals, -1)
    else:
        # check the guess against the full mass before trusting it, else sort everything
        vals, idx = torch.topk(logits, min(_NUCLEUS_GUESS, logits.shape[-1]))
        probs = torch.exp(vals - torch.logsumexp(logits, -1))
        if float(probs.sum()) < top_p:
            vals, idx = torch.sort(logits, descending=True)
            probs = torch.softmax(vals, -1)
    if top_p < 1.0:
        # transformers' rule: keep a token while the mass strictly above it is below top_p
        probs = probs.masked_fill((torch.cumsum(probs, -1) - probs) >= top_p, 0.0)
    # multinomial normalizes the kept mass itself
    return int(idx[torch.multinomial(probs, 1, generator=generator)])


class Sampler:
    """The next token of one sequence, remembering what it has seen for the penalty.

    ``constraint`` (a :class:`~agent.models.constrain.Constraint`, optional): the tokens a
    grammar allows; the others' logits go to -inf after the penalty and before the choice,
    and the chosen token advances it."""

    def __init__(self, options: GenerationOptions, vocab_size: int, prompt: list[int], constraint: Any = None):
        import torch

        self.options = options
        self.penalty = float(options.repetition_penalty)
        self.seen = torch.zeros(vocab_size, dtype=torch.bool)
        self._seen_ids = torch.zeros(0, dtype=torch.long)
        """The ids ``seen`` marks, once each: the penalty touches only these (a few hundred)
        instead of three passes over the whole vocabulary, which on a busy machine cost a
        parallel region each (~40 ms a token at 2 threads under load, measured)."""
        if self.penalty != 1.0:
            self.seen[torch.tensor(prompt)] = True
            self._seen_ids = self.seen.nonzero().view(-1)
        self.generator = generator_for(options.seed)
        self.constraint = constraint

    def __call__(self, logits: torch.Tensor) -> int:
        import torch

        if self.penalty != 1.0 and self._seen_ids.numel():
            logits = penalize_ids(logits, self._seen_ids, self.penalty)
        if self.constraint is not None:
            token = self.constraint.choose(logits, self.options.greedy,
                                           lambda masked: sample(masked, self.options, self.generator))
        else:
            token = int(torch.argmax(logits)) if self.options.greedy else sample(logits, self.options, self.generator)
        if self.penalty != 1.0 and not self.seen[token]:
            self.seen[token] = True
            self._seen_ids = torch.cat([self._seen_ids, torch.tensor([token])])
        return token


def choose_tokens(logits: torch.Tensor, rows: Sequence[Any], seen: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[int, BaseException]]:
    """The next token of every row of a batch, each sampled with its own ``options`` and its
    own generator (kept on the row as ``rng``, made on the row's first sampled token), and
    within its own grammar when the row has a ``constraint``.

    Returns the tokens and, by row index, the error of each row that could not be sampled (a
    seed torch refuses, NaN probabilities): those rows' tokens are meaningless and the caller
    ends them with their own error, so one request never fails its neighbours."""
    import torch

    penalty = torch.tensor([[r.options.repetition_penalty] for r in rows], dtype=logits.dtype, device=logits.device)
    logits = penalize(logits, seen, penalty)
    errors: dict[int, BaseException] = {}
    constrained = [(i, c) for i, r in enumerate(rows) if (c := getattr(r, "constraint", None)) is not None]
    for i, c in constrained:  # each row's own grammar (agent.models.constrain.Constraint)
        try:
            logits[i] = c.mask(logits[i])
        except Exception as exc:
            errors[i] = exc
    tokens = logits.argmax(-1)
    for i, row in enumerate(rows):
        if row.options.greedy or i in errors:
            continue
        try:
            if row.rng is None:
                row.rng = generator_for(row.options.seed, logits.device)
            tokens[i] = sample(logits[i], row.options, row.rng)
        except Exception as exc:
            errors[i] = exc
    for i, c in constrained:
        if i not in errors:
            try:
                c.advance(int(tokens[i]))
            except Exception as exc:
                errors[i] = exc
    return tokens, errors
