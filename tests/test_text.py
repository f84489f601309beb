import dataclasses
import hashlib
import io
import tarfile

import pytest
import torch

from course_utils.datasets import catalog, sources, text
from course_utils.datasets.sources import DataNotFoundError
from course_utils.datasets.text import PAD, PAD_ID, UNK, UNK_ID, CharBatches, CharVocab, WordVocab


def _change(monkeypatch, name, **fields):
    """Replace fields of the dataset's (only) file in the catalog for one test."""
    entry = catalog.DATASETS[name]
    monkeypatch.setitem(catalog.DATASETS, name,
                        dataclasses.replace(entry, files=(dataclasses.replace(entry.files[0], **fields),)))


# ---------------------------------------------------------------- characters

@pytest.mark.parametrize("sample", ["Happy families are all alike.\n", "a", "ça va? «oui» — 3 × 4 = 12 ✓\n"])
def test_char_encoding_round_trip(sample):
    vocab = CharVocab.from_text(sample)
    ids = vocab.encode(sample)
    assert vocab.decode(ids) == sample
    assert vocab.decode(torch.tensor(ids)) == sample
    assert len(vocab) == len(set(sample)) and list(vocab.chars) == sorted(set(sample))
    assert all(0 <= i < len(vocab) for i in ids)


def test_unknown_characters_are_named_or_dropped():
    vocab = CharVocab.from_text("abc ")
    with pytest.raises(text.UnknownCharactersError) as err:
        vocab.encode("a béta ✓ é")
    message = str(err.value)
    assert message.startswith("3 character(s)") and "'é'" in message and "'✓'" in message and "'t'" in message
    assert message.count("'é'") == 1  # each character named once
    assert vocab.decode(vocab.encode("a béta", unknown="drop")) == "a ba"
    with pytest.raises(ValueError, match="unknown must be"):
        vocab.encode("abc", unknown="replace")


def test_char_vocab_rejects_repeats_and_empty():
    with pytest.raises(ValueError):
        CharVocab("aba")
    with pytest.raises(ValueError):
        CharVocab("")


@pytest.mark.parametrize("batch_size,seq_length", [(1, 1), (2, 3), (4, 5), (3, 7)])
def test_char_batches_shapes_and_shift(batch_size, seq_length):
    ids = torch.arange(103)
    batches = CharBatches(ids, batch_size, seq_length)
    per_batch = batch_size * seq_length
    assert len(batches) == 102 // per_batch
    pairs = list(batches)
    assert len(pairs) == len(batches)
    for inputs, targets in pairs:
        assert inputs.shape == targets.shape == (batch_size, seq_length)
        assert torch.equal(targets, inputs + 1)  # ids are 0, 1, 2...: the target is the next one
    # row i of batch k+1 continues row i of batch k, so a hidden state can be carried over
    rows = torch.cat([inputs for inputs, _ in pairs], dim=1)
    assert torch.equal(rows.flatten(), ids[:len(pairs) * per_batch])
    assert batches.num_samples() == len(pairs) * per_batch


def test_char_batches_too_short():
    with pytest.raises(ValueError, match="cannot fill one batch"):
        CharBatches(torch.arange(10), 2, 5)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        CharBatches(torch.arange(10), 0, 5)


def test_split_tail_keeps_order():
    train, val = text.split_tail(torch.arange(100), 0.1)
    assert torch.equal(train, torch.arange(90)) and torch.equal(val, torch.arange(90, 100))
    with pytest.raises(ValueError):
        text.split_tail(torch.arange(100), 1.0)


# ---------------------------------------------------------------- files

def test_read_text_normalises_line_ends(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("one\r\ntwo\rthree\nquatre é\n".encode())
    assert text.read_text(path) == "one\ntwo\nthree\nquatre é\n"


def test_read_text_rejects_non_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Anna Karénine".encode("latin-1"))
    with pytest.raises(text.TextEncodingError) as err:
        text.read_text(path)
    message = str(err.value)
    assert "latin1.txt is not UTF-8" in message and "e9" in message and "position 8" in message


def test_strip_gutenberg():
    book = "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nChapter 1\nText.\n\n*** END OF THIS ***\nLicence"
    assert text.strip_gutenberg(book) == "Chapter 1\nText.\n"
    assert text.strip_gutenberg("plain\n") == "plain\n"


def test_anna_sources_in_order_and_listed_when_all_fail(tmp_path, empty_cache, monkeypatch):
    monkeypatch.setenv(sources.MIRROR_ENV, str(tmp_path / "no-mirror"))
    _change(monkeypatch, "anna", urls=("https://127.0.0.1:9/anna.txt",))
    where = [candidate.where for candidate in text.anna_candidates()]
    assert where[0].startswith("mirror") and where[-1].startswith("download https://")
    with pytest.raises(DataNotFoundError) as err:
        text.anna_path()
    message = str(err.value)
    assert message.index("local cache") < message.index("mirror") < message.index("download")
    assert sources.MIRROR_ENV in message


def test_anna_wrong_content_is_rejected(tmp_path, empty_cache, monkeypatch):
    (tmp_path / "m" / "text").mkdir(parents=True)
    (tmp_path / "m" / "text" / "anna.txt").write_text("not the novel")
    monkeypatch.setenv(sources.MIRROR_ENV, str(tmp_path / "m"))
    _change(monkeypatch, "anna", urls=())
    with pytest.raises(DataNotFoundError, match="sha256 is"):
        text.anna_path()
    assert not (empty_cache / "text" / "anna.txt").exists()


def test_anna_from_the_mirror(mirror, empty_cache, monkeypatch):
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))
    path = text.anna_path()
    assert path == empty_cache / "text" / "anna.txt"
    assert sources.file_digest(path, "sha256") == catalog.DATASETS["anna"].files[0].digests[0]
    novel = text.load_anna()
    assert "\r" not in novel and "*** END OF" not in novel and "Gutenberg" not in novel[-2000:]
    assert len(CharVocab.from_text(novel)) < 84  # the README's 84 count \r and the licence's symbols


# ---------------------------------------------------------------- IMDB

def _review_tar(path, reviews):
    """A tar.gz in the IMDB layout from {(split, 'pos'|'neg', id): text}."""
    with tarfile.open(path, "w:gz") as tar:
        for (split, label, review_id), body in reviews.items():
            data = body.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{review_id}_7.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("aclImdb/imdb.vocab")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"the"))


def test_read_imdb_orders_by_label_then_id(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _review_tar(archive, {("train", "pos", 10): "good", ("train", "neg", 3): "bad", ("train", "pos", 2): "great",
                          ("test", "neg", 1): "awful", ("test", "pos", 1): "fine"})
    splits = text.read_imdb(archive)
    assert splits["train"] == (["bad", "great", "good"], [0, 1, 1])
    assert splits["test"] == (["awful", "fine"], [0, 1])
    assert text.read_imdb(archive, ["train"], limit=1)["train"] == (["bad", "good"], [0, 1])
    with pytest.raises(ValueError, match="unknown IMDB split"):
        text.read_imdb(archive, ["valid"])


def test_read_imdb_rejects_other_archives(tmp_path):
    archive = tmp_path / "other.tar.gz"
    _review_tar(archive, {("train", "pos", 1): "x"})
    with pytest.raises(ValueError, match="no reviews under aclImdb/test"):
        text.read_imdb(archive)


def test_imdb_accepts_either_published_archive(tmp_path, empty_cache, monkeypatch):
    mirror_root = tmp_path / "m"
    (mirror_root / "imdb").mkdir(parents=True)
    fake = mirror_root / "imdb" / "aclImdb_v1.tar.gz"
    _review_tar(fake, {("train", "pos", 1): "x", ("test", "neg", 1): "y"})
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror_root))
    _change(monkeypatch, "imdb", urls=("https://127.0.0.1:9/aclImdb_v1.tar.gz",))
    where = [candidate.where for candidate in text.imdb_candidates()]
    assert [w.split()[0] for w in where] == ["mirror", "mirror", "download"]
    with pytest.raises(DataNotFoundError) as err:  # a tar with the right layout but not the published bytes
        text.imdb_path()
    assert "sha256 is" in str(err.value) and "aclImdb_labelled.tar.gz: no such file" in str(err.value)
    digest = hashlib.sha256(fake.read_bytes()).hexdigest()
    _change(monkeypatch, "imdb", digests=(digest,), urls=())
    assert text.read_imdb(text.imdb_path())["train"] == (["x"], [1])


def test_imdb_from_the_mirror_reads_a_few(mirror):
    archive = mirror / "imdb" / "aclImdb_labelled.tar.gz"
    if not archive.is_file():
        pytest.skip("the mirror has no IMDB archive")
    texts, labels = text.read_imdb(archive, ["train"], limit=5)["train"]
    assert labels == [0] * 5 + [1] * 5
    assert all(isinstance(t, str) and len(tokenised := text.tokenize(t)) > 5 and tokenised for t in texts)


# ---------------------------------------------------------------- words

@pytest.mark.parametrize("raw,expected", [
    ("This movie was GREAT!<br /><br />I'd watch it again.",
     ["this", "movie", "was", "great", "i'd", "watch", "it", "again"]),
    ("Bad.<br/>Really bad... 2/10", ["bad", "really", "bad", "2", "10"]),
    ("Amélie, l'été — don't_miss", ["amélie", "l'été", "don't", "miss"]),
    ("", []),
    ("  ?!  <br />  ", []),
])
def test_tokenize(raw, expected):
    assert text.tokenize(raw) == expected


def test_vocab_specials_min_freq_and_order():
    token_lists = [["good", "film", "good"], ["bad", "film", "good"], ["rare"]]
    vocab = WordVocab.build(token_lists, min_freq=2)
    assert vocab.itos == [PAD, UNK, "good", "film"]  # 3 > 2; 'bad' and 'rare' once each
    assert vocab.stoi[PAD] == PAD_ID == 0 and vocab.stoi[UNK] == UNK_ID == 1
    assert vocab.encode(["good", "unseen", "film"]) == [2, 1, 3]
    assert vocab.decode([2, 3, 0, 0]) == ["good", "film"]
    everything = WordVocab.build(token_lists, min_freq=1)
    assert everything.itos == [PAD, UNK, "good", "film", "bad", "rare"]  # ties alphabetical
    assert WordVocab.build(token_lists, min_freq=1, max_size=4).itos == [PAD, UNK, "good", "film"]


def test_vocab_validation():
    with pytest.raises(ValueError, match="min_freq"):
        WordVocab.build([["a"]], min_freq=0)
    with pytest.raises(ValueError, match="starts with"):
        WordVocab(["a", "b"])
    assert WordVocab(WordVocab.build([["a", "a"]]).itos).itos == [PAD, UNK, "a"]  # a stored list rebuilds it


@pytest.mark.parametrize("ids,length,keep,expected", [
    ([5, 6, 7], 5, "last", [5, 6, 7, 0, 0]),
    ([5, 6, 7], 3, "first", [5, 6, 7]),
    ([5, 6, 7, 8], 2, "first", [5, 6]),
    ([5, 6, 7, 8], 2, "last", [7, 8]),
    ([], 2, "last", [0, 0]),
])
def test_pad_or_truncate(ids, length, keep, expected):
    assert text.pad_or_truncate(ids, length, keep) == expected


def test_pad_or_truncate_validation():
    with pytest.raises(ValueError):
        text.pad_or_truncate([1], 0)
    with pytest.raises(ValueError):
        text.pad_or_truncate([1], 2, keep="middle")


def test_encode_texts_shapes_and_empty_reviews():
    vocab = WordVocab.build([["a", "good", "film"]] * 2)
    ids = text.encode_texts(["A good film!", "film", "a nice film with a good plot"], vocab, max_length=4)
    assert ids.shape == (3, 4) and ids.dtype == torch.long
    assert ids[0].tolist() == [vocab.stoi["a"], vocab.stoi["good"], vocab.stoi["film"], PAD_ID]
    assert ids[2].tolist() == [UNK_ID, vocab.stoi["a"], vocab.stoi["good"], UNK_ID]  # the last 4 words
    with pytest.raises(text.EmptyTextError, match="text 1 has no words"):
        text.encode_texts(["good", "<br />!!"], vocab, 4)
    with pytest.raises(text.EmptyTextError, match="no word in the vocabulary"):
        text.encode_texts(["utterly unseen"], vocab, 4, require_known=True)
    assert text.encode_texts(["utterly unseen"], vocab, 4).tolist() == [[UNK_ID, UNK_ID, 0, 0]]
