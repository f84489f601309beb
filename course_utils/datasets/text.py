"""Text as numbers: verified text datasets, UTF-8 reading, vocabularies, tokens, padding and batches."""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from course_utils.core.arguments import check_count
from course_utils.datasets import catalog
from course_utils.datasets.sources import Candidate, candidates, fetch

IMDB_CLASS_NAMES = ["negative", "positive"]
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


class TextEncodingError(ValueError):
    """A text file is not valid UTF-8."""


class UnknownCharactersError(ValueError):
    """A text has characters that the vocabulary does not contain."""


class EmptyTextError(ValueError):
    """A text has no tokens the model can use."""


# ---------------------------------------------------------------- files and sources

def anna_candidates() -> list[Candidate]:
    """Every source of anna.txt (see the catalog), in the order they are tried after the local cache."""
    return candidates("anna")


def anna_path() -> Path:
    """The verified anna.txt in the cache (data/text/), fetched from the first source that works."""
    return fetch("anna")


def imdb_candidates() -> list[Candidate]:
    """Every source of the IMDB archive (see the catalog), in the order they are tried after the local cache."""
    return candidates("imdb")


def imdb_path() -> Path:
    """The verified IMDB archive in the cache (data/imdb/), fetched from the first source that works."""
    return fetch("imdb")


def read_text(path: str | Path) -> str:
    """A text file's content, decoded strictly as UTF-8, with every line ending turned into \\n."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = raw[err.start:err.end]
        raise TextEncodingError(
            f"{path} is not UTF-8 text: byte {bad.hex(' ')} at position {err.start} cannot be decoded. "
            "Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or read it with its own "
            "encoding and pass the string instead."
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_gutenberg(text: str) -> str:
    """The text without a Project Gutenberg header (up to `*** START OF`) and licence (from `*** END OF`)."""
    start = text.find("*** START OF")
    if start != -1:
        text = text[text.find("\n", start) + 1:]
    end = text.find("*** END OF")
    if end != -1:
        text = text[:end]
    return text.strip("\n") + "\n"


def load_anna(strip_licence: bool = True) -> str:
    """Anna Karenina as one string (verified, UTF-8, \\n line ends), by default without the licence."""
    text = read_text(anna_path())
    return strip_gutenberg(text) if strip_licence else text


def read_imdb(path: str | Path, splits: Sequence[str] = ("train", "test"),
              limit: int | None = None) -> dict[str, tuple[list[str], list[int]]]:
    """Reviews and labels (0 negative, 1 positive) per split, read straight from the tar archive.

    Reviews are ordered by label, then by file id, so every source of the archive gives the same
    order. `limit` keeps the first `limit` reviews of each label per split (for quick tests).
    """
    unknown = set(splits) - {"train", "test"}
    if unknown:
        raise ValueError(f"unknown IMDB split(s) {sorted(unknown)}; choose train and/or test")
    found: dict[str, list[tuple[int, int, str]]] = {split: [] for split in splits}
    counts = Counter()
    layout = re.compile(catalog.file_entry("imdb").members)  # aclImdb/<split>/<neg|pos>/<id>_<rating>.txt
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            match = layout.match(member.name) if member.isfile() else None
            if not match or match[1] not in found:
                continue
            split, label, review_id = match[1], int(match[2] == "pos"), int(match[3])
            if limit is not None and counts[split, label] >= limit:
                if all(counts[name, y] >= limit for name in found for y in (0, 1)):
                    break  # the archive is read in order: stop once every folder has enough
                continue
            counts[split, label] += 1
            found[split].append((label, review_id, tar.extractfile(member).read().decode("utf-8")))
    result = {}
    for split, items in found.items():
        if not items:
            raise ValueError(f"{path} holds no reviews under aclImdb/{split}/: not the IMDB archive?")
        items.sort(key=lambda item: item[:2])
        result[split] = ([text for _, _, text in items], [label for label, _, _ in items])
    return result


def load_imdb(splits: Sequence[str] = ("train", "test")) -> dict[str, tuple[list[str], list[int]]]:
    """The IMDB reviews and labels per split, from the verified archive."""
    return read_imdb(imdb_path(), splits)


# ---------------------------------------------------------------- characters

class CharVocab:
    """Each character of a text gets an index: `encode` text -> ids, `decode` ids -> text."""

    def __init__(self, chars: str):
        if not chars or len(set(chars)) != len(chars):
            raise ValueError("a character vocabulary needs at least one character and no repeats")
        self.chars = chars  # a plain string: what a checkpoint stores
        self.index = {char: i for i, char in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The sorted set of characters in `text`."""
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order of appearance."""
        if set(text) <= self.index.keys():  # the usual case, checked at C speed
            return []
        return list(dict.fromkeys(char for char in text if char not in self.index))

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        """Indices of the characters of `text`.

        A character outside the vocabulary raises UnknownCharactersError naming it
        (`unknown="error"`), or is left out (`unknown="drop"`).
        """
        if unknown not in ("error", "drop"):
            raise ValueError(f"unknown must be 'error' or 'drop', got {unknown!r}")
        missing = self.unknown(text)
        if missing and unknown == "error":
            raise UnknownCharactersError(
                f"{len(missing)} character(s) of the text are not in the vocabulary: "
                f"{', '.join(repr(char) for char in missing)}. The model only knows the {len(self)} characters "
                "of its training text; rephrase, or pass unknown='drop' to leave them out."
            )
        if missing:
            text = "".join(char for char in text if char in self.index)
        return list(map(self.index.__getitem__, text))

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """The text spelled by a sequence of indices."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.chars[i] for i in ids)


def split_tail(ids: torch.Tensor, val_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a sequence into (first part, last `val_fraction`): for text, the validation is what comes last."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    cut = len(ids) - int(round(len(ids) * val_fraction))
    if cut <= 1 or cut >= len(ids) - 1:
        raise ValueError(f"val_fraction={val_fraction} of {len(ids)} items leaves a split too short to use")
    return ids[:cut], ids[cut:]


class CharBatches:
    """(inputs, targets) mini-batches of shape (batch_size, seq_length) from one long id sequence.

    The sequence is cut into `batch_size` equal rows that are read left to right, `seq_length`
    columns at a time, so row i of one batch continues row i of the batch before: the hidden state
    can be carried from batch to batch. Targets are the inputs shifted one character ahead.
    Characters that do not fill a whole batch at the end are left out.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_length: int):
        check_count("batch_size", batch_size)
        check_count("seq_length", seq_length)
        ids = torch.as_tensor(ids, dtype=torch.long)
        per_batch = batch_size * seq_length
        num_batches = (len(ids) - 1) // per_batch
        if num_batches == 0:
            raise ValueError(f"{len(ids)} characters cannot fill one batch of {batch_size} x {seq_length} "
                             "(plus one target): use a smaller batch_size or seq_length")
        used = num_batches * per_batch
        self.inputs = ids[:used].view(batch_size, -1)        # (batch_size, num_batches * seq_length)
        self.targets = ids[1:used + 1].view(batch_size, -1)  # the same, one character later
        self.seq_length = seq_length

    def __len__(self) -> int:
        return self.inputs.shape[1] // self.seq_length

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.inputs.shape[1], self.seq_length):
            yield self.inputs[:, start:start + self.seq_length], self.targets[:, start:start + self.seq_length]

    def num_samples(self) -> int:
        """How many target characters one pass yields."""
        return self.targets.numel()


# ---------------------------------------------------------------- words

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters and digits, with inner apostrophes (don't, it's)


def tokenize(text: str) -> list[str]:
    """Lowercase words of `text`: HTML line breaks removed, punctuation dropped, apostrophes kept inside words."""
    return _WORD.findall(_BREAK.sub(" ", text).lower())


class WordVocab:
    """Word <-> index, with <pad> = 0 and <unk> = 1; built from training texts only."""

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"a word vocabulary starts with {PAD!r}, {UNK!r}; got {itos[:2]}")
        if len(set(itos)) != len(itos):
            raise ValueError("a word vocabulary has no repeated words")
        self.itos = itos  # a plain list of str: what a checkpoint stores
        self.stoi = {word: i for i, word in enumerate(itos)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 2, max_size: int | None = None) -> WordVocab:
        """Words seen at least `min_freq` times, most frequent first (ties alphabetical).

        `max_size` caps the whole vocabulary, <pad> and <unk> included.
        """
        check_count("min_freq", min_freq)
        if max_size is not None and max_size < 3:
            raise ValueError(f"max_size must leave room for <pad>, <unk> and one word, got {max_size}")
        counts = Counter(word for tokens in token_lists for word in tokens)
        words = sorted((word for word, n in counts.items() if n >= min_freq and word not in (PAD, UNK)),
                       key=lambda word: (-counts[word], word))
        if max_size is not None:
            words = words[:max_size - 2]
        return cls([PAD, UNK, *words])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Indices of `tokens`; words outside the vocabulary become <unk>."""
        return [self.stoi.get(word, UNK_ID) for word in tokens]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        """The words of a sequence of indices, padding left out."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return [self.itos[i] for i in ids if i != PAD_ID]


def pad_or_truncate(ids: Sequence[int], length: int, keep: str = "last", pad_id: int = PAD_ID) -> list[int]:
    """Exactly `length` ids: longer sequences keep their first or last `length`, shorter are padded on the right."""
    check_count("length", length)
    if keep not in ("first", "last"):
        raise ValueError(f"keep must be 'first' or 'last', got {keep!r}")
    ids = list(ids)
    if len(ids) > length:
        ids = ids[:length] if keep == "first" else ids[-length:]
    return ids + [pad_id] * (length - len(ids))


def encode_tokens(token_lists: Sequence[Sequence[str]], vocab: WordVocab, max_length: int, keep: str = "last",
                  require_known: bool = False) -> torch.Tensor:
    """Token ids of shape (len(token_lists), max_length): encoded, truncated and right-padded.

    A text with no tokens raises EmptyTextError, and so does one whose words are all unknown when
    `require_known` (use it for new input: the model would see only <unk>, its answer would mean nothing).
    """
    rows = []
    for i, tokens in enumerate(token_lists):
        ids = vocab.encode(tokens)
        if not tokens or (require_known and all(token_id == UNK_ID for token_id in ids)):
            what = "has no words" if not tokens else f"has no word in the vocabulary ({' '.join(tokens[:8])!r})"
            where = f"text {i}" if len(token_lists) > 1 else "the text"
            raise EmptyTextError(f"{where} {what}: write a sentence with ordinary words the model has seen")
        rows.append(pad_or_truncate(ids, max_length, keep))
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), max_length)


def encode_texts(texts: Sequence[str], vocab: WordVocab, max_length: int, keep: str = "last",
                 require_known: bool = False) -> torch.Tensor:
    """`encode_tokens` of the tokenised texts: shape (len(texts), max_length)."""
    return encode_tokens([tokenize(text) for text in texts], vocab, max_length, keep, require_known)
