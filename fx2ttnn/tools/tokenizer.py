"""Built-in character tokenizer: text → SpeechT5 input ids without sentencepiece or tokenizer files.

SpeechT5's real tokenizer (``SpeechT5Tokenizer``, the SentencePiece model ``spm_char.model`` shipped with
``microsoft/speecht5_tts``) is character level: the text becomes ``"▁" + text.replace(" ", "▁")``, each
character one id, then ``</s>``; no ``<s>`` is added.  This tokenizer reproduces that convention and, for the
characters listed below, the very ids of ``spm_char.model`` (as recorded in transformers' own tokenizer tests),
so a real checkpoint that lacks tokenizer files still gets ids it was trained on.

Mapping (``CHAR_IDS``)::

    0 <s>   1 <pad>   2 </s>   3 <unk>          special tokens (only </s> and <unk> are produced)
    4 ▁  (word boundary: start of text and every run of whitespace)
    5 e   6 t   7 a   8 o   9 n  10 i  11 h  12 s  13 r  14 d  15 l  16 u  17 c  18 m  19 f
   20 w  21 g  22 y  23 ,  24 p  25 b  26 .  27 v  28 k  37 x  39 -  45 q  46 j  57 z
   63 )  64 (

Normalization, in order:

1. Unicode NFKD, then combining marks dropped (``é`` → ``e``, ``ﬁ`` → ``fi``); lower-cased.
2. Digits are spelled out with transformers' ``EnglishNumberNormalizer`` when it is importable
   (``92000`` → ``ninety two thousand``); otherwise, and for any digit left, each digit becomes its name.
3. Punctuation: ``! ? …`` → ``.``; ``; :`` → ``,``; brackets ``[ ] { }`` → ``( )``; dashes (``– — _``) →
   ``-``; ``&`` → `` and ``; apostrophes and quotes are removed (``don't`` → ``dont``).
4. Whitespace runs collapse to one ``▁``; leading/trailing whitespace is dropped.
5. Any other character → ``<unk>`` (3); ``unknown_characters(text)`` lists them (``fx2ttnn synth`` warns,
   and refuses a text with nothing else).

Every id is below ``vocab_size`` (an id the model's embedding does not have becomes ``<unk>``); the output
always ends with ``</s>``.  The mapping is a pure function of the text: deterministic, no randomness.
"""
from __future__ import annotations

import re
import unicodedata

import torch

BOS, PAD, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = {"<s>": BOS, "<pad>": PAD, "</s>": EOS, "<unk>": UNK}
WORD = "▁"

# Ids of spm_char.model (microsoft/speecht5_tts, microsoft/speecht5_asr) for the characters this tokenizer emits.
CHAR_IDS: dict[str, int] = {
    WORD: 4, "e": 5, "t": 6, "a": 7, "o": 8, "n": 9, "i": 10, "h": 11, "s": 12, "r": 13, "d": 14, "l": 15,
    "u": 16, "c": 17, "m": 18, "f": 19, "w": 20, "g": 21, "y": 22, ",": 23, "p": 24, "b": 25, ".": 26,
    "v": 27, "k": 28, "x": 37, "-": 39, "q": 45, "j": 46, "z": 57, ")": 63, "(": 64,
}
DEFAULT_VOCAB_SIZE = 81  # SpeechT5Config().vocab_size: 79 characters/specials + <mask> + <ctc_blank>

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_PUNCT = str.maketrans({"!": ".", "?": ".", "…": ".", ";": ",", ":": ",", "[": "(", "]": ")", "{": "(",
                        "}": ")", "–": "-", "—": "-", "_": "-", "&": " and ",
                        "'": None, '"': None, "`": None, "‘": None, "’": None, "“": None, "”": None})


def _spell_numbers(text: str) -> str:
    if not any(ch.isdigit() for ch in text):
        return text
    try:
        from transformers.models.speecht5.number_normalizer import EnglishNumberNormalizer
        text = EnglishNumberNormalizer()(text)
    except Exception:  # noqa: BLE001 - optional helper; the digit-by-digit fallback below always applies
        pass
    return re.sub(r"\d", lambda m: f" {_DIGITS[int(m.group())]} ", text)


def normalize(text: str) -> str:
    """The normalized text (steps 1-4 of the module docstring), with spaces (not ``▁``) between words."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _spell_numbers(text.lower()).lower()
    text = text.translate(_PUNCT)
    return " ".join(text.split())


class CharTokenizer:
    """Text → ``input_ids`` in SpeechT5's character vocabulary (see the module docstring for the mapping)."""

    def __init__(self, vocab_size: int = DEFAULT_VOCAB_SIZE):
        if vocab_size <= UNK:
            raise ValueError(f"vocab_size must be > {UNK} (ids 0-3 are <s> <pad> </s> <unk>), got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.eos_token_id, self.pad_token_id, self.unk_token_id, self.bos_token_id = EOS, PAD, UNK, BOS

    def encode(self, text: str) -> list[int]:
        """Ids for ``text``: ``▁`` + one id per character (words joined by ``▁``) + ``</s>``."""
        norm = normalize(text)
        chars = WORD + norm.replace(" ", WORD) if norm else ""
        ids = [CHAR_IDS.get(ch, UNK) for ch in chars]
        ids = [i if i < self.vocab_size else UNK for i in ids]
        return ids + [EOS]

    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of ``text`` (before normalization, in order) that become ``<unk>``: outside
        the mapping, or mapped to an id the model's vocabulary does not have."""
        out = []
        for ch in dict.fromkeys(text):
            if ch.isspace():
                continue
            ids = [CHAR_IDS.get(c, UNK) for c in normalize(ch).replace(" ", "")]
            if any(i == UNK or i >= self.vocab_size for i in ids):
                out.append(ch)
        return out

    def __call__(self, text: str, return_tensors: str | None = "pt") -> dict:
        """HF-tokenizer-like call: ``{"input_ids": [1, n] LongTensor, "attention_mask": ones}``."""
        ids = self.encode(text)
        if return_tensors is None:
            return {"input_ids": ids, "attention_mask": [1] * len(ids)}
        if return_tensors != "pt":
            raise ValueError("CharTokenizer only returns torch tensors (return_tensors='pt') or lists (None)")
        t = torch.tensor([ids], dtype=torch.long)
        return {"input_ids": t, "attention_mask": torch.ones_like(t)}

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
