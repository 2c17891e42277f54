"""Loaders of the canonical language-modelling corpora, from `--data-dir` or where `bench data
download TASK` put them (cache_dir/data/TASK).

- WikiText-103 (`wiki.train.tokens`, `wiki.valid.tokens`, `wiki.test.tokens`): word level, as
  Transformer-XL reads it: each line (blank ones too) is its whitespace-split words plus `<eos>`;
  the vocabulary is built from train only (every word of train, `<unk>` kept as the word the
  corpus already uses for rare words, plus `<eos>`); ids by descending train count, ties by the
  word, from 1 (0 is padding). A valid/test word absent from train maps to `<unk>`.
- enwik8 (the 100,000,000-byte file `enwik8`): byte level, the first 90M bytes train, the next
  5M valid, the last 5M test (Transformer-XL's prep_enwik8.py; a shorter file is cut at the same
  fractions: the last two twentieths are valid and test).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import torch

from suites.data import DataRequest
from suites.lm.segments import LMInfo, LMTaskData, protocol_text, segments
from suites.lm.stdlib_corpus import byte_tokens
from suites.lra.files import check_not_partial, data_roots, not_found

WIKITEXT_FILES = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")
EOS, UNK = "<eos>", "<unk>"
# Transformer-XL's WikiText-103 vocabulary (n_token 267,735, <eos> included) plus padding id 0
WIKITEXT103_VOCAB = 267_735 + 1
ENWIK8_FILE = "enwik8"
ENWIK8_BYTES = 100_000_000
ENWIK8_EVAL_BYTES = 5_000_000


def find_files(task: str, request: DataRequest, names: tuple[str, ...]) -> Path:
    """The first folder (--data-dir, then the download folder, each also one level down) that
    holds all `names`; DataUnavailable naming where it looked and the fix otherwise."""
    looked = []
    for root in data_roots(request, task):
        candidates = [
            root,
            *(sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []),
        ]
        check_not_partial(task, [(c, [c / n for n in names]) for c in candidates])
        for folder in candidates:
            if all((folder / n).is_file() for n in names):
                return folder
        looked.append(root)
    raise not_found(task, " and ".join(names), looked)


def word_lines(path: Path) -> list[list[str]]:
    """Each line's words plus <eos>, as Transformer-XL's tokenizer (add_eos=True)."""
    with path.open(encoding="utf-8") as f:
        return [[*line.split(), EOS] for line in f]


def build_vocab(train: list[list[str]]) -> dict[str, int]:
    """Word -> id from the train words: descending count, ties by the word, ids from 1;
    <unk> and <eos> always present."""
    counts = Counter(w for line in train for w in line)
    for special in (EOS, UNK):
        counts.setdefault(special, 0)
    ordered = sorted(counts, key=lambda w: (-counts[w], w))
    return {w: i + 1 for i, w in enumerate(ordered)}


def encode_words(lines: list[list[str]], vocab: dict[str, int]) -> torch.Tensor:
    unk = vocab[UNK]
    return torch.tensor([vocab.get(w, unk) for line in lines for w in line], dtype=torch.int64)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_wikitext103(request: DataRequest) -> LMTaskData:
    folder = find_files("wikitext103", request, WIKITEXT_FILES)
    lines = [word_lines(folder / name) for name in WIKITEXT_FILES]
    vocab = build_vocab(lines[0])
    if len(vocab) + 1 > WIKITEXT103_VOCAB:
        raise ValueError(
            f"wikitext103: {folder} has {len(vocab)} train words, more than WikiText-103's "
            f"{WIKITEXT103_VOCAB - 1}: these are not the WikiText-103 files"
        )
    caps = (request.n_train, request.n_dev, request.n_test)
    streams = [encode_words(split, vocab) for split in lines]
    cut = [segments(s, request.max_len, cap) for s, cap in zip(streams, caps, strict=True)]
    test_bytes = (folder / WIKITEXT_FILES[2]).stat().st_size
    info = LMInfo(
        token_unit="word",
        protocol=protocol_text(request.max_len),
        corpus={
            "name": "wikitext-103",
            "vocab_words": len(vocab),
            "unk_id": vocab[UNK],
            **{
                name.split(".")[1]: {
                    "tokens": int(s.numel()),
                    "bytes": (folder / name).stat().st_size,
                    "sha256": _sha256(folder / name),
                }
                for name, s in zip(WIKITEXT_FILES, streams, strict=True)
            },
        },
        bytes_per_token=test_bytes / max(1, int(streams[2].numel())),
    )
    source = f"WikiText-103 from {folder}, word level, vocabulary of {len(vocab)} from train"
    return LMTaskData(*cut, source=source, info=info)


def load_enwik8(request: DataRequest) -> LMTaskData:
    folder = find_files("enwik8", request, (ENWIK8_FILE,))
    path = folder / ENWIK8_FILE
    data = path.read_bytes()
    if len(data) < 40:
        raise ValueError(f"enwik8: {path} has {len(data)} bytes; the file has {ENWIK8_BYTES}")
    n_eval = ENWIK8_EVAL_BYTES if len(data) == ENWIK8_BYTES else len(data) // 20
    n_train = len(data) - 2 * n_eval
    parts = {
        "train": data[:n_train],
        "valid": data[n_train : n_train + n_eval],
        "test": data[n_train + n_eval :],
    }
    caps = {"train": request.n_train, "valid": request.n_dev, "test": request.n_test}
    cut = [segments(byte_tokens(parts[s]), request.max_len, caps[s]) for s in parts]
    info = LMInfo(
        token_unit="byte",
        protocol=protocol_text(request.max_len),
        corpus={
            "name": "enwik8",
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "official_size": len(data) == ENWIK8_BYTES,
            **{s: {"bytes": len(b)} for s, b in parts.items()},
        },
    )
    source = f"enwik8 from {path}, byte level, {n_train}/{n_eval}/{n_eval} bytes split"
    return LMTaskData(*cut, source=source, info=info)
