from agent.models.textstream import IncrementalDecoder, StopStringFilter, TextStream


def test_stop_string_split_across_pieces_is_cut():
    f = StopStringFilter(["</end>"])
    out = f.feed("hello </") + f.feed("en") + f.feed("d> more")
    assert out == "hello "
    assert f.stopped


def test_possible_stop_prefix_is_released_when_it_is_not_a_stop():
    f = StopStringFilter(["STOP"])
    assert f.feed("a ST") == "a "
    assert f.feed("ART") == "START"
    assert f.flush() == ""


def test_held_prefix_comes_out_at_the_end():
    f = StopStringFilter(["STOP"])
    assert f.feed("x ST") == "x "
    assert f.flush() == "ST"


class ByteTokenizer:
    """Each token is one UTF-8 byte, so multi-byte characters span tokens."""

    def decode(self, ids, skip_special_tokens=True, clean_up_tokenization_spaces=False):
        return bytes(ids).decode("utf-8", errors="replace")


def test_incremental_decoder_never_emits_half_characters():
    decoder = IncrementalDecoder(ByteTokenizer())
    pieces = [decoder.push(b) for b in "héllo 🙂!".encode()]
    pieces.append(decoder.flush())
    assert "".join(pieces) == "héllo 🙂!"
    assert all("\ufffd" not in p for p in pieces)


def test_text_stream_reports_cancelled():
    stream = TextStream().attach(iter(["a", "b"]))
    stream.cancel()
    assert stream.text() == "ab"
    assert stream.finish_reason == "cancelled"
