"""MiniLMEncoder on real onnxruntime; make_encoder selection."""

from __future__ import annotations

import numpy as np
import pytest

from recpilot.data.embeddings import (
    Encoder,
    MiniLMEncoder,
    OpenAIEmbedder,
    make_encoder,
    minilm_tokenizer_path,
)


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder(batch_size=4)


def test_shape_dtype_and_unit_norm(encoder: MiniLMEncoder) -> None:
    vecs = encoder.encode(["a comedy about dogs", "", "space opera " * 300])
    assert vecs.shape == (3, 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(encoder: MiniLMEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_rejects_a_bare_string(encoder: MiniLMEncoder) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode("not a list")  # type: ignore[arg-type]


def test_related_sentences_are_closer_than_unrelated(encoder: MiniLMEncoder) -> None:
    a, b, c = encoder.encode(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply today.",
        ]
    )
    assert a @ b > 0.6
    assert a @ b > a @ c + 0.4
    space, star, romance = encoder.encode(
        [
            "Alien (1979). Genres: Horror, Sci-Fi.",
            "Star Wars (1977). Genres: Action, Adventure, Sci-Fi.",
            "Sleepless in Seattle (1993). Genres: Comedy, Romance.",
        ]
    )
    assert space @ star > space @ romance


def test_batch_padding_equals_one_at_a_time(encoder: MiniLMEncoder) -> None:
    texts = [
        "Toy Story (1995). Genres: Animation, Children's, Comedy.",
        "Heat",
        "A very long description of a film " * 20,
        "GoldenEye (1995). Genres: Action, Adventure, Thriller.",
        "Three Colors: Red (1994). Genres: Drama.",
        "x",
    ]
    batched = encoder.encode(texts)  # sorted by length, padded per batch of 4
    single = np.vstack([encoder.encode([t]) for t in texts])
    assert np.abs(batched - single).max() < 1e-4


def test_order_is_restored_after_length_sorting(encoder: MiniLMEncoder) -> None:
    texts = ["long " * 50, "short", "medium length text here"]
    fwd = encoder.encode(texts)
    rev = encoder.encode(texts[::-1])
    assert np.abs(fwd - rev[::-1]).max() < 1e-4


def test_truncates_to_max_tokens() -> None:
    enc = MiniLMEncoder(max_tokens=16)
    long_a = "alpha beta gamma delta " * 10
    long_b = long_a + "completely different ending about submarines"
    a, b = enc.encode([long_a, long_b])
    assert np.abs(a - b).max() < 1e-6


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEncoder(batch_size=0)
    with pytest.raises(ValueError, match="max_tokens"):
        MiniLMEncoder(max_tokens=512)


def test_tokenizer_is_shipped_with_notice() -> None:
    folder = minilm_tokenizer_path().parent
    assert {"tokenizer.json", "vocab.txt", "NOTICE"} <= {p.name for p in folder.iterdir()}
    assert "Apache License" in (folder / "NOTICE").read_text()


def test_make_encoder_local_is_cached_minilm(settings) -> None:
    enc = make_encoder(settings)
    assert isinstance(enc, MiniLMEncoder)
    assert isinstance(enc, Encoder)
    assert make_encoder(settings) is enc


def test_make_encoder_remote_when_base_url_set(settings) -> None:
    remote = settings.model_copy(
        update={"embedding_base_url": "http://127.0.0.1:9/v1", "embedding_model": "m"}
    )
    enc = make_encoder(remote)
    assert isinstance(enc, OpenAIEmbedder)
    assert enc.model == "m"
