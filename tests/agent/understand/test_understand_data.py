"""Every training-data format, split selection, and the errors bad data gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import InputError
from agent.understand.data import combine, load_dataset, parse_spec


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_text_and_intent_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,intent\nhello there,greeting\n"bye, now",goodbye\n')
    data = load_dataset(path)
    assert data.texts == ["hello there", "bye, now"]
    assert data.labels == ["greeting", "goodbye"]
    assert data.classes == ["goodbye", "greeting"]


@pytest.mark.parametrize("text_col,label_col", [("sentence", "label"), ("Text", "Category"), ("text", "label")])
def test_csv_column_names(tmp_path: Path, text_col: str, label_col: str) -> None:
    path = write(tmp_path / "d.csv", f"id,{text_col},{label_col}\n1,a b,x\n2,c d,y\n")
    assert load_dataset(path).labels == ["x", "y"]


def test_tsv_glue_style_keeps_quotes(tmp_path: Path) -> None:
    # SST-2 sentences contain bare double quotes; GLUE TSVs are unquoted.
    path = write(tmp_path / "d.tsv", 'sentence\tlabel\nit \'s a "classic" \t1\nbad " movie\t0\n')
    data = load_dataset(path)
    assert data.texts == ['it \'s a "classic"', 'bad " movie']
    assert data.labels == ["1", "0"]


def test_jsonl_objects_and_pairs(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"text": "hi", "intent": "greeting"}\n\n["bye", "goodbye"]\n'
                                       '{"sentence": "thanks", "label": "thanks"}\n')
    data = load_dataset(path)
    assert data.texts == ["hi", "bye", "thanks"]
    assert data.labels == ["greeting", "goodbye", "thanks"]


def test_rasa_nlu_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "nlu.yml", """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hey
    - hello [Sara](name)
- intent: book
  examples: |
    - fly to [Berlin]{"entity": "city"} tomorrow
- intent: inform
  examples:
  - text: |
      my name is Ana
    metadata: {sentiment: neutral}
- synonym: savings
  examples: |
    - pink pig
- regex: account_number
  examples: |
    - \\d{10,12}
""")
    data = load_dataset(path)
    assert data.texts == ["hey", "hello Sara", "fly to Berlin tomorrow", "my name is Ana"]
    assert data.labels == ["greet", "greet", "book", "inform"]


def test_json_splits_select_and_join(tmp_path: Path) -> None:
    splits = {"train": [["a", "x"], ["b", "y"]], "oos_train": [["c", "oos"]], "test": [["d", "x"]]}
    path = write(tmp_path / "data.json", json.dumps(splits))
    assert load_dataset(f"{path}#train").texts == ["a", "b"]
    joined = load_dataset(f"{path}#train+oos_train")
    assert joined.texts == ["a", "b", "c"]
    assert joined.labels == ["x", "y", "oos"]
    assert joined.counts() == {"x": 1, "y": 1, "oos": 1}


def test_relabel_and_combine(tmp_path: Path) -> None:
    splits = {"train": [["what's my balance", "balance"], ["thanks a lot", "thank_you"], ["set a timer", "timer"]]}
    requests = load_dataset(f"{write(tmp_path / 'clinc.json', json.dumps(splits))}#train")
    neutral = requests.relabelled("neutral", drop=["thank_you"])
    assert neutral.texts == ["what's my balance", "set a timer"] and neutral.labels == ["neutral", "neutral"]
    polar = load_dataset(write(tmp_path / "sst.tsv", "sentence\tlabel\ngreat film\t1\ndull film\t0\n"))
    both = combine([polar, neutral])
    assert both.texts == ["great film", "dull film", "what's my balance", "set a timer"]
    assert both.labels == ["1", "0", "neutral", "neutral"]
    assert "sst.tsv" in both.source and "as 'neutral'" in both.source


def test_json_plain_list(tmp_path: Path) -> None:
    path = write(tmp_path / "d.json", json.dumps([["a", "x"], {"text": "b", "intent": "y"}]))
    assert load_dataset(path).labels == ["x", "y"]


def test_parse_spec_prefers_existing_path_with_hash(tmp_path: Path) -> None:
    path = write(tmp_path / "odd#name.csv", "text,label\na,x\n")
    assert parse_spec(str(path)) == (path, [])
    assert parse_spec(f"{tmp_path}/d.json#a+b") == (tmp_path / "d.json", ["a", "b"])


# ---- bad data -----------------------------------------------------------------------

def test_unknown_split_lists_the_available_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "data.json", json.dumps({"train": [["a", "x"]], "test": [["b", "y"]]}))
    with pytest.raises(InputError, match=r"no split 'dev'.*available: test, train"):
        load_dataset(f"{path}#train+dev")


def test_splits_file_without_fragment_says_how_to_pick(tmp_path: Path) -> None:
    path = write(tmp_path / "data.json", json.dumps({"train": [["a", "x"]]}))
    with pytest.raises(InputError, match="#split"):
        load_dataset(path)


@pytest.mark.parametrize("name", ["e.csv", "e.tsv", "e.jsonl", "e.yml", "e.json"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="is empty"):
        load_dataset(write(tmp_path / name, "  \n"))


def test_header_only_csv_has_no_examples(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no examples"):
        load_dataset(write(tmp_path / "h.csv", "text,label\n"))


def test_missing_columns_name_what_was_found(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"text column.*found \['utterance', 'label'\]"):
        load_dataset(write(tmp_path / "d.csv", "utterance,label\nhi,greet\n"))


def test_jsonl_missing_key_and_bad_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"d.jsonl:1.*label key"):
        load_dataset(write(tmp_path / "d.jsonl", '{"text": "hi"}\n'))
    with pytest.raises(InputError, match=r"e.jsonl:2 is not valid JSON"):
        load_dataset(write(tmp_path / "e.jsonl", '{"text": "hi", "label": "x"}\n{oops\n'))


def test_yaml_without_nlu_section(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nlu:"):
        load_dataset(write(tmp_path / "d.yml", "stories: []\n"))


def test_one_class_is_not_trainable(tmp_path: Path) -> None:
    data = load_dataset(write(tmp_path / "d.csv", "text,label\na,x\nb,x\n"))
    with pytest.raises(InputError, match=r"only one label \('x'\)"):
        data.require_trainable()


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unknown data format"):
        load_dataset(write(tmp_path / "d.txt", "hello"))
    with pytest.raises(InputError, match="JSON file only"):
        load_dataset(f"{write(tmp_path / 'd.csv', 'text,label')}#train")
