from hypothesis import given, settings, strategies as st

import pytest

from fedinf.retrieval import ChunkPolicy, chunk_text


def test_offsets_point_into_the_text_and_cover_it() -> None:
    text = ("First paragraph about OpenSSL. It has two sentences.\n\n" * 40) + "Last words."
    chunks = chunk_text(text, policy=ChunkPolicy(max_chars=300, overlap=50))
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert len(c.text) <= 300
        assert c.text == c.text.strip()
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # neighbours overlap (no text is lost between chunks)
    assert all(b.start <= a.end for a, b in zip(chunks, chunks[1:]))


def test_cuts_prefer_paragraph_then_sentence_boundaries() -> None:
    text = "A" * 50 + ". " + "b " * 100 + "\n\n" + "c" * 100
    chunks = chunk_text(text, policy=ChunkPolicy(max_chars=280, overlap=0))
    assert chunks[0].text.endswith("b")  # cut at the paragraph break, not mid-word


def test_pages_are_chunked_separately() -> None:
    text = "page one text" + "\n\f\n" + "page two text"
    pages = [(1, 0, 13), (2, 16, 29)]
    chunks = chunk_text(text, pages=pages)
    assert [(c.page, c.text) for c in chunks] == [(1, "page one text"), (2, "page two text")]
    assert text[chunks[1].start:chunks[1].end] == "page two text"


def test_whitespace_only_and_unbroken_text() -> None:
    assert chunk_text("   \n\n  ") == []
    text = "x" * 2500  # no boundary at all: hard cuts
    chunks = chunk_text(text, policy=ChunkPolicy(max_chars=1000, overlap=100))
    assert all(text[c.start:c.end] == c.text for c in chunks) and chunks[-1].end == 2500


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        ChunkPolicy(max_chars=10)
    with pytest.raises(ValueError):
        ChunkPolicy(max_chars=100, overlap=60)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .\n\t!é")), max_size=3000),
       st.integers(min_value=50, max_value=400), st.integers(min_value=0, max_value=24))
def test_property_offsets_exact_and_everything_covered(text: str, size: int, overlap: int) -> None:
    chunks = chunk_text(text, policy=ChunkPolicy(max_chars=size, overlap=overlap))
    covered = set()
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.text.strip() and len(c.text) <= size
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
