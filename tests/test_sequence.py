import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.core import checkpoints
from course_utils.datasets import text
from course_utils.datasets.text import CharBatches, CharVocab, WordVocab
from course_utils.models import sequence

SAMPLE = "the cat sat on the mat. the dog sat on the log.\n" * 20


def _char_model(vocab, **overrides):
    torch.manual_seed(0)
    config = dict(embedding_dim=8, hidden_size=16, num_layers=2, dropout=0.1) | overrides
    return sequence.CharLSTM(len(vocab), **config)


@pytest.mark.parametrize("hidden", [None, "tensor", "tuple"])
def test_detach_hidden_cuts_the_graph(hidden):
    weight = torch.ones(1, requires_grad=True)
    if hidden is None:
        assert sequence.detach_hidden(None) is None
        return
    h = weight * torch.ones(2, 3)
    state = h if hidden == "tensor" else (h, 2 * h)
    detached = sequence.detach_hidden(state)
    parts = [detached] if hidden == "tensor" else list(detached)
    assert all(p.grad_fn is None and not p.requires_grad for p in parts)
    assert torch.equal(parts[0], h)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_char_lstm_shapes(num_layers):
    vocab = CharVocab.from_text(SAMPLE)
    model = _char_model(vocab, num_layers=num_layers)
    logits, (h, c) = model(torch.zeros(4, 7, dtype=torch.long))
    assert logits.shape == (4, 7, len(vocab))
    assert h.shape == c.shape == (num_layers, 4, 16)


def test_training_lowers_the_loss_and_clips(monkeypatch):
    vocab = CharVocab.from_text(SAMPLE)
    ids = torch.tensor(vocab.encode(SAMPLE))
    train_ids, val_ids = text.split_tail(ids, 0.2)
    model = _char_model(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    before = sequence.evaluate_chars(model, CharBatches(val_ids, 2, 10), "cpu")
    clip = torch.nn.utils.clip_grad_norm_
    max_norms = []

    def recording_clip(parameters, max_norm, *args, **kwargs):
        max_norms.append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    history = sequence.train_chars(model, CharBatches(train_ids, 4, 10), CharBatches(val_ids, 2, 10), optimizer,
                                   torch.device("cpu"), num_steps=35, clip_norm=4.0, eval_every=15, verbose=False)
    assert max_norms == [4.0] * 35  # every update is clipped, at the norm asked for
    assert history["step"] == [15, 30, 35]
    assert len(history["val_loss"]) == len(history["train_loss"]) == 3
    assert history["val_loss"][-1] < before - 0.5  # a repetitive text is learned quickly
    with pytest.raises(ValueError, match="num_steps"):
        sequence.train_chars(model, CharBatches(train_ids, 4, 10), CharBatches(val_ids, 2, 10), optimizer,
                             torch.device("cpu"), num_steps=0)


@pytest.mark.parametrize("settings, match", [
    ({"num_steps": 2.5}, "num_steps"),
    ({"num_steps": True}, "num_steps"),
    ({"eval_every": True}, "eval_every"),
    ({"eval_every": 2.5}, "eval_every"),
    ({"eval_every": 0}, "eval_every"),
])
def test_train_chars_rejects_bad_counts_before_training(settings, match):
    vocab = CharVocab.from_text(SAMPLE)
    ids = torch.tensor(vocab.encode(SAMPLE))
    model = _char_model(vocab)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=f"{match} must be a whole number >= 1"):
        sequence.train_chars(model, CharBatches(ids, 4, 10), CharBatches(ids, 2, 10),
                             torch.optim.SGD(model.parameters(), lr=1.0), torch.device("cpu"),
                             **({"num_steps": 5} | settings), verbose=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_sample_is_reproducible_and_respects_top_k():
    vocab = CharVocab.from_text(SAMPLE)
    model = _char_model(vocab)
    first = sequence.sample(model, vocab, "the ", 40, "cpu", generator=torch.Generator().manual_seed(1))
    again = sequence.sample(model, vocab, "the ", 40, "cpu", generator=torch.Generator().manual_seed(1))
    assert first == again and first.startswith("the ") and len(first) == 44
    # top_k=1 is greedy decoding: no randomness left
    greedy = {sequence.sample(model, vocab, "the ", 20, "cpu", top_k=1, generator=torch.Generator().manual_seed(s))
              for s in range(3)}
    assert len(greedy) == 1


@pytest.mark.parametrize("prompt,kwargs,match", [
    ("", {}, "at least one character"),
    ("the", {"temperature": 0.0}, "temperature"),
    ("the", {"top_k": 0}, "top_k"),
])
def test_sample_rejects_bad_settings(prompt, kwargs, match):
    vocab = CharVocab.from_text(SAMPLE)
    with pytest.raises(ValueError, match=match):
        sequence.sample(_char_model(vocab), vocab, prompt, 5, "cpu", **kwargs)


def test_sample_names_unknown_prompt_characters():
    vocab = CharVocab.from_text(SAMPLE)
    with pytest.raises(text.UnknownCharactersError, match="'Z', 'é'"):
        sequence.sample(_char_model(vocab), vocab, "Zoé", 5, "cpu")


def test_checkpoint_with_vocabulary_round_trip(tmp_path):
    vocab = CharVocab.from_text(SAMPLE)
    model = _char_model(vocab)
    path = sequence.save_char_model(tmp_path / "char.pt", model, vocab, val_loss=1.5)
    raw = torch.load(path, weights_only=True)  # plain types only: safe loading works
    assert raw["vocabulary"] == vocab.chars and raw["val_loss"] == 1.5
    loaded, loaded_vocab = sequence.load_char_model(path)
    assert loaded_vocab.chars == vocab.chars and loaded.config == model.config
    texts = [sequence.sample(m, v, "the", 60, "cpu", temperature=0.8, top_k=5,
                             generator=torch.Generator().manual_seed(3))
             for m, v in ((model, vocab), (loaded, loaded_vocab))]
    assert texts[0] == texts[1]


def test_checkpoint_without_vocabulary_is_refused(tmp_path):
    vocab = CharVocab.from_text(SAMPLE)
    model = _char_model(vocab)
    path = checkpoints.save_checkpoint(tmp_path / "bare.pt", model, model.config)
    with pytest.raises(checkpoints.CheckpointError, match="no character vocabulary"):
        sequence.load_char_model(path)
    with pytest.raises(ValueError, match="vocabulary has"):
        sequence.save_char_model(tmp_path / "x.pt", model, CharVocab("ab"))


def test_sentiment_last_step_equals_packing():
    torch.manual_seed(0)
    model = sequence.SentimentLSTM(vocab_size=30, embedding_dim=6, hidden_size=5, num_layers=2, dropout=0.0).eval()
    ids = torch.tensor([[4, 5, 6, 7, 8], [9, 3, 0, 0, 0], [2, 0, 0, 0, 0]])
    logits = model(ids)
    assert logits.shape == (3, 2)
    model.packed = True
    assert torch.allclose(model(ids), logits, atol=1e-6)
    # and both equal running each review alone, without any padding
    alone = torch.cat([model(row[row != 0].unsqueeze(0)) for row in ids])
    assert torch.allclose(alone, logits, atol=1e-6)


@pytest.mark.parametrize("packed", [False, True])
def test_bidirectional_always_packs_and_ignores_padding(packed):
    torch.manual_seed(0)
    model = sequence.SentimentLSTM(vocab_size=30, embedding_dim=6, hidden_size=5, num_layers=2, dropout=0.0,
                                   packed=packed, bidirectional=True).eval()
    ids = torch.tensor([[4, 5, 6, 7, 8], [9, 3, 0, 0, 0], [2, 0, 0, 0, 0]])
    logits = model(ids)
    assert logits.shape == (3, 2) and model.head.in_features == 10
    alone = torch.cat([model(row[row != 0].unsqueeze(0)) for row in ids])
    assert torch.allclose(alone, logits, atol=1e-6)


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("packed,bidirectional", [(False, False), (True, False), (False, True)])
def test_pooling_reads_only_the_real_words(pool, packed, bidirectional):
    torch.manual_seed(0)
    model = sequence.SentimentLSTM(vocab_size=30, embedding_dim=6, hidden_size=5, num_layers=2, dropout=0.0,
                                   packed=packed, bidirectional=bidirectional, pool=pool).eval()
    ids = torch.tensor([[4, 5, 6, 7, 8], [9, 3, 0, 0, 0], [2, 0, 0, 0, 0]])
    logits = model(ids)
    assert logits.shape == (3, 2)
    alone = torch.cat([model(row[row != 0].unsqueeze(0)) for row in ids])
    assert torch.allclose(alone, logits, atol=1e-6)
    # and the pooled vector is what its name says, over the real steps of the LSTM's outputs
    embedded = model.embedding(ids[1:2, :2])
    outputs, _ = model.lstm(embedded)
    expected = outputs.amax(dim=1) if pool == "max" else outputs.mean(dim=1)
    assert torch.allclose(model.head(expected), logits[1:2], atol=1e-6)


def test_pooling_differs_from_the_last_step():
    torch.manual_seed(0)
    model = sequence.SentimentLSTM(vocab_size=30, embedding_dim=6, hidden_size=5, dropout=0.0).eval()
    ids = torch.tensor([[4, 5, 6, 7, 8]])
    last = model(ids)
    model.pool = "max"
    assert not torch.allclose(model(ids), last)


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="pool must be one of last, max, mean"):
        sequence.SentimentLSTM(vocab_size=30, pool="sum")


def test_sentiment_learns_a_toy_rule_with_fit():
    from course_utils.core import training
    from course_utils.datasets import mnist
    torch.manual_seed(0)
    vocab = WordVocab.build([["good", "bad", "film", "plot"]], min_freq=1)
    texts = ["good film", "bad film", "film good", "plot bad", "good plot good", "bad bad plot"] * 4
    labels = torch.tensor([1, 0, 1, 0, 1, 0] * 4)
    ids = text.encode_texts(texts, vocab, max_length=4)
    loader = mnist.TensorBatches(ids, labels, batch_size=12, shuffle=True)
    model = sequence.SentimentLSTM(len(vocab), embedding_dim=8, hidden_size=8, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    training.fit(model, loader, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), 12, verbose=False)
    probs = sequence.predict_sentiment(model, vocab, ["a good film", "a bad plot"], 4, torch.device("cpu"))
    assert probs.shape == (2, 2) and torch.allclose(probs.sum(dim=1), torch.ones(2))
    assert probs[0, 1] > 0.9 and probs[1, 0] > 0.9


@pytest.mark.parametrize("review,match", [("", "has no words"), ("<br />...", "has no words"),
                                          ("zyx qwv", "no word in the vocabulary")])
def test_predict_rejects_empty_or_unknown_reviews(review, match):
    vocab = WordVocab.build([["good", "film"]], min_freq=1)
    model = sequence.SentimentLSTM(len(vocab), 4, 4)
    with pytest.raises(text.EmptyTextError, match=match):
        sequence.predict_sentiment(model, vocab, [review], 8, torch.device("cpu"))
    with pytest.raises(TypeError, match="list of texts"):
        sequence.predict_sentiment(model, vocab, "good film", 8, torch.device("cpu"))


def test_pack_padded_sequence_matches_the_lesson():
    # the lesson's claim: packing gives h_n at each row's own last step
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    packed = pack_padded_sequence(x, torch.tensor([5, 2]), batch_first=True, enforce_sorted=False)
    _, (h, _) = lstm(packed)
    _, (h_short, _) = lstm(x[1:, :2])
    assert torch.allclose(h[0, 1], h_short[0, 0], atol=1e-6)
