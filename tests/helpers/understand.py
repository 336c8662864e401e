"""For the understand tests: tiny labelled intent and sentiment sets (no shared data, no
weights), and a tiny randomly initialised sentence-transformers BERT folder (2 layers, 32-d)
built in a temp dir, so the lean encoder and the sentiment branch are tested without weights."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

_INTENT_WORDS = {
    "weather": (["weather", "rain", "sunny", "forecast", "temperature", "snow"],
                ["today", "tomorrow", "outside", "this weekend"]),
    "music": (["song", "playlist", "album", "band", "guitar", "concert"],
              ["play", "recommend", "favourite", "loud"]),
    "food": (["pizza", "recipe", "pasta", "dinner", "soup", "salad"],
             ["cook", "eat", "hungry", "delicious"]),
}


def intent_examples(per_intent: int = 14) -> tuple[list[str], list[str]]:
    """Texts that share topic words within an intent and none across intents."""
    texts, labels = [], []
    for label, (nouns, extras) in _INTENT_WORDS.items():
        pairs = itertools.islice(itertools.cycle(itertools.product(nouns, extras)), per_intent)
        for i, (noun, extra) in enumerate(pairs):
            texts.append(f"{noun} {extra} {nouns[(i + 1) % len(nouns)]}")
            labels.append(label)
    return texts, labels


_POSITIVE = ["great", "wonderful", "love", "excellent", "happy", "fantastic", "amazing", "good"]
_NEGATIVE = ["awful", "terrible", "hate", "horrible", "angry", "furious", "broken", "bad"]
_FILLER = ["the service", "this app", "my order", "the movie", "your team", "the update"]


def sentiment_examples(neutral: bool = False) -> tuple[list[str], list[str]]:
    """SST-2 style 0/1 labels (or negative/neutral/positive with ``neutral=True``)."""
    texts, labels = [], []
    for i, filler in enumerate(_FILLER * 2):
        texts.append(f"{filler} is {_POSITIVE[i % 8]} and {_POSITIVE[(i + 3) % 8]}")
        labels.append("positive" if neutral else "1")
        texts.append(f"{filler} is {_NEGATIVE[i % 8]} and {_NEGATIVE[(i + 3) % 8]}")
        labels.append("negative" if neutral else "0")
        if neutral:
            texts.append(f"{filler} arrived on tuesday at noon")
            labels.append("neutral")
    return texts, labels


_WORDS = sorted({w for phrase in _FILLER for w in phrase.split()} | set(_POSITIVE) | set(_NEGATIVE)
                | {"is", "and", "arrived", "on", "tuesday", "at", "noon", ",", ".", "!", "?", "i", "it", "so", "very"})


def build_tiny_encoder(folder: Path, *, layers: int = 2, hidden: int = 32, heads: int = 4) -> Path:
    """Write the folder (config, weights, tokenizer, pooling and normalize modules)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                      cls_token="[CLS]", mask_token="[MASK]").save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (folder / "2_Normalize").mkdir(exist_ok=True)
    return folder
