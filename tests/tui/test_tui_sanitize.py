"""The neutralizer: control characters never reach a widget as controls."""

from __future__ import annotations

import pytest

from tui.sanitize import StreamNeutralizer, neutralize, one_line


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("keep\nnewlines\tand tabs", "keep\nnewlines\tand tabs"),
        ("\x1b[2J\x1b[H", "␛[2J␛[H"),  # clear screen
        ("\x1b]0;pwned\x07", "␛]0;pwned␇"),  # set the window title (OSC 0, BEL)
        ("\x1b]52;c;aGk=\x1b\\", "␛]52;c;aGk=␛\\"),  # write the clipboard (OSC 52, ST)
        ("\x9b2J", "\\x9b2J"),  # 8-bit CSI
        ("\x9d0;t\x9c", "\\x9d0;t\\x9c"),  # 8-bit OSC and ST
        ("a\x00b\x7fc", "a␀b␡c"),
        ("line\r\nnext", "line\nnext"),
        ("over\rwrite", "over␍write"),
        ("sep\u2028arator", "sep\narator"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
        ("[bold]x[/] [@click=app.quit]y[/]", "[bold]x[/] [@click=app.quit]y[/]"),  # markup is left to Content
        ("émoji 👍 ünïcode", "émoji 👍 ünïcode"),
    ],
)
def test_neutralize(raw: str, shown: str) -> None:
    assert neutralize(raw) == shown


def test_neutralized_text_has_no_controls_left() -> None:
    everything = "".join(chr(code) for code in range(0x00, 0xA0)) + "\u2028\u2029\u202a\u202e\u2066\u2069"
    clean = neutralize(everything)
    bad = [c for c in clean if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert bad == []
    assert not any(c in clean for c in "\u2028\u2029\u202a\u202e\u2066\u2069")


def test_stream_joins_crlf_split_across_pieces() -> None:
    cleaner = StreamNeutralizer()
    out = cleaner.feed("one\r") + cleaner.feed("\ntwo\x1b") + cleaner.feed("[31m") + cleaner.flush()
    assert out == "one\ntwo␛[31m"


def test_stream_flushes_a_trailing_carriage_return() -> None:
    cleaner = StreamNeutralizer()
    assert cleaner.feed("end\r") == "end"
    assert cleaner.flush() == "␍"
    assert cleaner.flush() == ""


def test_one_line_folds_and_truncates() -> None:
    assert one_line("a\n b\t\x1b c") == "a b ␛ c"
    assert one_line("x" * 50, 10) == "x" * 9 + "…"


def test_single_newlines_become_hard_breaks_outside_code_fences() -> None:
    from tui.linebreaks import LineBreaks, keep_line_breaks

    text = "roses are red\nviolets are blue\n\n```py\nx = 1\ny = 2\n```\nend\n"
    expected = "roses are red  \nviolets are blue  \n\n```py\nx = 1\ny = 2\n```\nend  \n"
    assert keep_line_breaks(text) == expected
    stream = LineBreaks()
    assert "".join(stream.feed(piece) for piece in ["roses are", " red\nvio", "lets are blue\n\n``", "`py\nx = 1\ny", " = 2\n```\nend\n"]) == expected
