"""Fit the re-ranking weights (``memory.rerank``) on LoCoMo conversations.

    python -m memory.fit_rerank --locomo locomo5_dev.json --conversations conv-26,conv-30,conv-41

prints the weights to put in ``memory.rerank_weights`` (the shipped defaults came from
exactly this command). Fit only on conversations you do not report as held out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memory.rerank import fit_logistic

__all__ = ["fit_rows", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Fit the re-ranking weights on LoCoMo conversations and print them."""
    import argparse
    import json

    from memory.config import MemoryConfig
    from memory.factory import build_embedder
    from memory.locomo import rerank_training_rows

    parser = argparse.ArgumentParser(prog="python -m memory.fit_rerank", description=main.__doc__)
    parser.add_argument("--locomo", required=True, help="a LoCoMo JSON file")
    parser.add_argument("--conversations", required=True,
                        help="comma-separated sample ids to fit on (never the ones you report as held out)")
    parser.add_argument("--c", type=float, default=0.1, help="inverse regularisation strength (default 0.1)")
    args = parser.parse_args(argv)
    config = MemoryConfig()
    wanted = [c.strip() for c in args.conversations.split(",") if c.strip()]
    rows = rerank_training_rows(args.locomo, embedder=build_embedder(config), config=config, conversations=wanted)
    weights = fit_rows(rows, args.c)
    print(json.dumps({k: round(v, 4) for k, v in weights.items()}, indent=1))
    return 0


def fit_rows(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], c: float = 0.1) -> dict[str, float]:
    """Fit on (conversation, features, labels) per question: each question weighs the same,
    its relevant candidates sharing one half and the others the other half."""
    xs, ys, ws = [], [], []
    for _, x, y in rows:
        if len(y) == 0:
            continue
        positives = max(1.0, float(y.sum()))
        xs.append(x)
        ys.append(y)
        ws.append(np.where(y > 0, 1.0 / positives, 1.0 / len(y)))
    return fit_logistic(np.vstack(xs), np.concatenate(ys), np.concatenate(ws), c=c)


if __name__ == "__main__":
    raise SystemExit(main())
