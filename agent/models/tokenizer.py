"""A tokenizer read from ``tokenizer.json`` with the ``tokenizers`` library alone.

transformers' tokenizer classes cost about 1.3 s to import and load here, a quarter of a
start-up budget; the fast decoder's tokenizer needs only what ``tokenizers`` already does
(encoding, decoding, special tokens) plus the chat template. :class:`LeanTokenizer`
offers the subset of the transformers tokenizer API that llmos's generation path uses:
calling it for ``input_ids``, ``decode``, ``apply_chat_template(..., tokenize=False)`` and
the special-token attributes. Chat templates render in the same sandboxed Jinja
environment settings transformers uses (trim_blocks, lstrip_blocks, loop controls,
``tojson``, ``raise_exception``, ``strftime_now``).

:func:`lean_tokenizer_reason` says when a folder's tokenizer needs transformers' own
class (a slow sentencepiece tokenizer, or a class that edits the tokenizer at load).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent.errors import ModelError

__all__ = ["LeanTokenizer", "lean_tokenizer_reason"]

# Classes whose loaded behaviour is exactly tokenizer.json's: transformers 5 saves every
# tokenizers-backed tokenizer as TokenizersBackend; PreTrainedTokenizerFast is the generic one.
_PLAIN_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}
# Keys with which a tokenizer class rewrites the post-processor or normalizer at load time.
_REWRITING_KEYS = ("add_bos_token", "add_eos_token", "add_prefix_space", "legacy", "from_slow")
_SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def lean_tokenizer_reason(folder: str | Path) -> str | None:
    """Why ``folder``'s tokenizer needs transformers (None: :class:`LeanTokenizer` reads it)."""
    path = Path(folder)
    if not (path / "tokenizer.json").is_file():
        return "no tokenizer.json"
    try:
        config = _config(path)
    except ModelError as exc:
        return str(exc)
    cls = config.get("tokenizer_class")
    if cls not in _PLAIN_CLASSES:
        return f"tokenizer class {cls!r}"
    keys = [k for k in _REWRITING_KEYS if k in config]
    if keys:
        return f"tokenizer settings {', '.join(keys)}"
    if config.get("backend", "tokenizers") != "tokenizers":
        return f"tokenizer backend {config.get('backend')!r}"
    return None


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # an AddedToken written out
        value = value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(folder: Path, config: Mapping[str, Any]) -> str | None:
    file = folder / "chat_template.jinja"
    if file.is_file():
        return file.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


class LeanTokenizer:
    """The tokenizer in ``folder`` (``tokenizer.json``, ``tokenizer_config.json`` and the chat
    template), with the transformers calls llmos's generation path makes."""

    # the special tokens' text (``_SPECIAL``), from tokenizer_config.json; None when unset
    bos_token: str | None
    eos_token: str | None
    unk_token: str | None
    pad_token: str | None
    sep_token: str | None
    cls_token: str | None
    mask_token: str | None

    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        reason = lean_tokenizer_reason(self.folder)
        if reason is not None:
            raise ModelError(f"{self.folder}: the tokenizer needs transformers ({reason})")
        config = _config(self.folder)
        try:
            self._tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        except Exception as exc:
            raise ModelError(f"cannot read {self.folder / 'tokenizer.json'}: {exc}") from None
        self._tok.no_padding()
        self._tok.no_truncation()
        for name in _SPECIAL:
            setattr(self, name, _token_text(config.get(name)))
        limit = config.get("model_max_length")
        self.model_max_length = int(limit) if isinstance(limit, (int, float)) else int(1e30)
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self.chat_template = _chat_template(self.folder, config)
        self.padding_side = str(config.get("padding_side", "right"))

    # -- special tokens ----------------------------------------------------------------------

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self._tok.token_to_id(token)

    @property
    def bos_token_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def eos_token_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def unk_token_id(self) -> int | None:
        return self._id(self.unk_token)

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: value for name in _SPECIAL if (value := getattr(self, name)) is not None}

    def __len__(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    # -- encoding and decoding ----------------------------------------------------------------

    def __call__(self, text: str | Sequence[str], *, add_special_tokens: bool = True, **kwargs: Any) -> dict[str, Any]:
        """``{"input_ids": [...], "attention_mask": [...]}`` for a string (lists for a list of
        strings). Padding and tensors are transformers' business: use ``LanguageModel``'s
        ``hf_tokenizer`` for them."""
        if kwargs.get("return_tensors") or kwargs.get("padding"):
            raise ModelError("LeanTokenizer does not pad or build tensors; use the transformers tokenizer "
                             "(LanguageModel.hf_tokenizer)")
        if isinstance(text, str):
            ids = self._tok.encode(text, add_special_tokens=add_special_tokens).ids
            return {"input_ids": ids, "attention_mask": [1] * len(ids)}
        encodings = self._tok.encode_batch(list(text), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings], "attention_mask": [[1] * len(e.ids) for e in encodings]}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        text = self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return _clean_up(text) if clean else text

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> Any:
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [self._tok.id_to_token(int(i)) for i in ids]

    def get_vocab(self) -> dict[str, int]:
        return dict(self._tok.get_vocab(with_added_tokens=True))

    # -- chat template ---------------------------------------------------------------------

    def apply_chat_template(self, conversation: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = False,
                            tokenize: bool = True, tools: Any = None, documents: Any = None,
                            **kwargs: Any) -> str | list[int]:
        """Render ``conversation`` with the model's chat template (as transformers does)."""
        if not self.chat_template:
            raise ModelError(f"{self.folder} has no chat template; format the prompt yourself")
        messages = [dict(m) for m in conversation]
        text = _compiled(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, tools=tools, documents=documents,
            **self.special_tokens_map, **kwargs)
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def __repr__(self) -> str:
        return f"LeanTokenizer({str(self.folder)!r}, vocab={len(self)})"


def _clean_up(text: str) -> str:
    """transformers' ``clean_up_tokenization``: no space before punctuation and contractions."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


@lru_cache(maxsize=8)
def _compiled(template: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` (assistant-mask markers): renders its body."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return str(caller())

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
    try:
        return env.from_string(template)
    except jinja2.TemplateError as exc:
        raise ModelError(f"the model's chat template does not parse: {exc}") from None
