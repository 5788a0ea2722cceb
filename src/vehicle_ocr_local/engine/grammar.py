"""Plate grammar decoding: the likeliest valid plate number in a recogniser's per-frame scores.

The recogniser (CTC, one probability row per image column strip, column 0 the blank) reads
a plate crop as free text, so a province it is unsure of may come out as "M", a 0 as "O"
and a faint red suffix as nothing.  Here the same probabilities are decoded once per GA 36
layout, each position allowed only its own characters (the 31 provinces first, then the
authority letter, serials without I or O, digits, the new-energy marker, the suffixes
学警港澳挂领, the 使 prefix, WJ), by a best-path (Viterbi) search through the CTC
lattice: it may skip frames before and after the plate (text on the frame around it) at a
price, and it treats a read separator dot as a blank.  The layout with the best path wins.

Each character gets two scores at its most confident frame: ``p`` (its probability among
everything the recogniser could have read there) and ``share`` (its probability among the
characters the layout allows there).  ``share`` is what tells look-alikes apart (0/D/Q,
8/B, 2/Z, 5/S); ``p`` says whether there was any evidence at all.  A "0" read where only a
letter may stand and O is one (the authority letter) is an O, D or Q by the recogniser's own
scores for those three.  The plate's confidence
combines the weakest of both, so a province guessed from nothing scores low.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from vehicle_ocr.normalize.plates import PROVINCES

_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
_DIGITS = "0123456789"
# Character classes of a plate position.
CLASSES: dict[str, str] = {
    "P": PROVINCES,
    "A": "ABCDEFGHJKLMNOPQRSTUVWXYZ",  # issuing authority: any letter but I (O is a real code)
    "S": _LETTERS + _DIGITS,  # serial
    "D": _DIGITS,
    "E": "ABCDEFGHJK",  # new-energy marker
    "X": "学警挂",  # suffixes of ordinary provinces' plates
    "L": "领",
    "H": "港澳",
    "Y": "粤",
    "Z": "Z",
    "U": "使",
    "W": "W",
    "J": "J",
    "G": "警" + _DIGITS,  # old armed-police unit number's third character
}
# One-row layouts (GA 36-2018 and the new-energy amendment).
LAYOUTS: dict[str, str] = {
    "regular": "PASSSSS",
    "new_energy_small": "PAESDDDD",
    "new_energy_large": "PADDDDDE",
    "suffixed": "PASSSSX",
    "consulate": "PADDDDL",
    "hong_kong_macau": "YZSSSSH",
    "embassy": "UDDDDDD",
    "armed_police": "WJPSSSSS",
    "armed_police_old": "WJDDGDDDD",
}
# Two-row plates: the upper row (province + authority letter) and the lower one, read apart.
TOP_ROW_LAYOUTS: dict[str, str] = {"top": "PA", "armed_police_top": "WJP"}
BOTTOM_ROW_LAYOUTS: dict[str, str] = {"serial": "SSSSS", "suffixed": "SSSSX", "new_energy_large": "DDDDDE"}
# The layouts each plate colour is printed with (GA 36): others are possible only if the colour was misjudged.
COLOR_LAYOUTS: dict[str, frozenset[str]] = {
    "blue": frozenset({"regular"}),
    "yellow": frozenset({"regular", "suffixed"}),
    "green": frozenset({"new_energy_small", "new_energy_large"}),
    "yellow_green": frozenset({"new_energy_large", "new_energy_small"}),
    # A new-energy plate's pale green gradient often looks white in a photo.
    "white": frozenset({"suffixed", "armed_police", "armed_police_old", "regular", "new_energy_small"}),
    "black": frozenset({"hong_kong_macau", "consulate", "embassy", "regular"}),
}
# Log-probability taken off a layout the plate's colour does not print.
COLOR_PENALTY = 3.0


def color_penalties(color: str | None) -> dict[str, float]:
    """Per-layout penalties for a plate of ``color`` (none for an unknown colour)."""
    allowed = COLOR_LAYOUTS.get(color or "")
    if allowed is None:
        return {}
    return {name: COLOR_PENALTY for name in LAYOUTS if name not in allowed}


# Glyphs the recogniser may put where a plate character is printed: evidence for that character.
_VARIANTS: dict[str, str] = {
    "0": "OoＯ０〇",
    "1": "Il|ｌＩ１",
    "沪": "泸户滬",
    "浙": "折淅",
    "冀": "翼異",
    "皖": "睆完",
    "湘": "相缃",
    "豫": "象予",
    "渝": "俞喻愉",
    "晋": "普晉",
    "贵": "责贯貴",
    "粤": "奥粵",
    "津": "律",
    "陕": "峡狭陝",
    "辽": "边遼",
    "黑": "墨",
    "鄂": "咢谔",
    "闽": "闵閩",
    "宁": "宇寧甯",
    "琼": "凉瓊",
    "吉": "吕",
    "桂": "佳圭",
    "鲁": "兽魯",
    "苏": "蘇",
    "赣": "贛",
    "云": "雲",
    "学": "學",
    "挂": "掛",
    "领": "領",
}
# Separators printed on plates: read as text, but they stand where the lattice has a blank.
_SEPARATORS = "·•・.。-‧∙⋅:：'\""
# Cost (log-probability) of every non-blank frame skipped before or after the plate.
_SKIP_COST = 2.5
_EPS = 1e-12


@dataclass(frozen=True)
class CharScore:
    char: str
    p: float  # probability at its best frame, among everything the recogniser knows
    share: float  # probability among the characters this position allows, at that frame
    at: float = 0.0  # where it was read, as a fraction of the crop's width (its best frame's centre)


@dataclass(frozen=True)
class Decoding:
    """A plate number decoded under one layout, with its path score and per-character scores."""

    number: str
    layout: str
    log_score: float
    chars: tuple[CharScore, ...]
    span: tuple[float, float]  # first and last frame of the plate, as fractions of the crop's width

    @property
    def confidence(self) -> float:
        """The weakest character: how sure its position is of it, tempered by how much it was seen at all."""
        if not self.chars:
            return 0.0
        return min(c.share * min(1.0, c.p / 0.2) ** 0.5 for c in self.chars)


@dataclass(frozen=True)
class _Alphabet:
    """The recogniser's character columns per plate character, and per position class."""

    size: int
    columns: dict[str, tuple[int, ...]]  # plate character -> columns of its glyphs
    separators: tuple[int, ...]
    # Per set of layouts: the pooled keys in column order, and each layout's member keys per position.
    plans: dict[tuple[tuple[str, str], ...], tuple[list[str], dict[str, list[list[int]]]]] = field(
        default_factory=dict, compare=False
    )


# The last alphabet built: the recogniser hands out a fresh copy of its character list with every
# call, so it is recognised by its content (a list comparison is far cheaper than building it again).
_alphabet_cache: list[tuple[list[str], _Alphabet]] = []


def _alphabet(characters: Sequence[str]) -> _Alphabet:
    if _alphabet_cache:
        known, cached = _alphabet_cache[0]
        if known is characters or (len(known) == len(characters) and known == list(characters)):
            return cached
    index: dict[str, int] = {}
    for i, char in enumerate(characters):
        index.setdefault(char, i)
    wanted = set("".join(CLASSES.values()))
    accented = _accented(index)
    columns: dict[str, tuple[int, ...]] = {}
    for char in wanted:
        glyphs = [char, char.lower(), chr(ord(char) + 0xFEE0) if char.isascii() else char, *_VARIANTS.get(char, "")]
        found = sorted({index[g] for g in glyphs if g in index and index[g] != 0} | set(accented.get(char, ())))
        if found:
            columns[char] = tuple(found)
    separators = tuple(sorted({index[s] for s in _SEPARATORS if s in index and index[s] != 0}))
    alphabet = _Alphabet(len(characters), columns, separators)
    _alphabet_cache[:] = [(list(characters), alphabet)]
    return alphabet


def _plan(alphabet: _Alphabet, layouts: dict[str, str]) -> tuple[list[str], dict[str, list[list[int]]]]:
    """The pooled keys for ``layouts`` (see decode) and, per layout, each position's keys (by index);
    a layout with a position no glyph of the alphabet can fill is left out."""
    name = tuple(layouts.items())
    plan = alphabet.plans.get(name)
    if plan is not None:
        return plan
    keys = sorted({_key(c, code) for layout in layouts.values() for code in layout for c in _class_chars(code)})
    keys = [k for k in keys if k[0] in alphabet.columns]
    position = {k: i for i, k in enumerate(keys)}
    sets_by_layout: dict[str, list[list[int]]] = {}
    for layout_name, layout in layouts.items():
        sets = [[position[_key(c, code)] for c in _class_chars(code) if _key(c, code) in position] for code in layout]
        if all(sets):
            sets_by_layout[layout_name] = sets
    alphabet.plans[name] = (keys, sets_by_layout)
    return keys, sets_by_layout


def _accented(index: dict[str, int]) -> dict[str, list[int]]:
    """Columns of Latin letters with a diacritic, by their plain upper-case letter: a plate's "A" under a
    screw or a speck comes out as "Å", which is evidence for A (canonical decomposition only, so "①" or
    "²" are not taken for digits)."""
    found: dict[str, list[int]] = {}
    for glyph, column in index.items():
        if column == 0 or len(glyph) != 1 or glyph.isascii():
            continue
        decomposed = unicodedata.normalize("NFD", glyph)
        base, marks = decomposed[0], decomposed[1:]
        if marks and base.isascii() and base.isalpha() and all(unicodedata.category(m) == "Mn" for m in marks):
            found.setdefault(base.upper(), []).append(column)
    return found


@cache
def _class_chars(code: str) -> str:
    return CLASSES[code]


# Look-alikes across letters and digits, used only where the position excludes the other kind, and
# at a small weight: a clear "6" where a letter must stand is weak evidence for G, not a G.
LOOKALIKE_WEIGHT = 0.05
_DIGIT_FOR_LETTER = {"B": "8", "S": "5", "Z": "2", "G": "6", "O": "0", "D": "0"}
_LETTER_FOR_DIGIT = {"0": "ODQ", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A", "7": "T"}


# The letters a "0"-shaped glyph may be where a letter must stand.  O is that very shape (an O read where
# only digits may stand is a 0, see _VARIANTS), and D and Q blur into it; where O is allowed (the issuing
# authority: 晋O is a provincial public-security plate), a 0 read there is split among the three in
# proportion to the recogniser's own scores for them, so a clear "0" with O its runner-up is an O and a
# "0" over a visible D stays a D.
_ROUND_LETTERS = "ODQ"


def _key(char: str, code: str) -> str:
    """The pooled column of ``char`` in a position of class ``code``: the character, marked when
    that class takes look-alikes of the other kind too."""
    members = CLASSES[code]
    if char in _ROUND_LETTERS and "O" in members and not any(c.isdigit() for c in members):
        return char + "#round"
    if char in _DIGIT_FOR_LETTER and not any(c.isdigit() for c in members):
        return char + "#letters"
    if char in _LETTER_FOR_DIGIT and not any(c.isalpha() and c.isascii() for c in members):
        return char + "#digits"
    return char


def _key_columns(alphabet: _Alphabet, key: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The key's own glyph columns, and the look-alike columns it borrows (at LOOKALIKE_WEIGHT)."""
    char = key[0]
    extra = ""
    if key.endswith("#round"):
        return tuple(alphabet.columns[char]), ()
    if key.endswith("#letters"):
        extra = _DIGIT_FOR_LETTER[char]
    elif key.endswith("#digits"):
        extra = _LETTER_FOR_DIGIT[char]
    own = tuple(alphabet.columns[char])
    borrowed = tuple(sorted({c for other in extra for c in alphabet.columns.get(other, ())} - set(own)))
    return own, borrowed


def _pool(probs: np.ndarray, own: tuple[int, ...], borrowed: tuple[int, ...]) -> np.ndarray:
    pooled = probs[:, list(own)].sum(axis=1)
    if borrowed:
        pooled = pooled + LOOKALIKE_WEIGHT * probs[:, list(borrowed)].sum(axis=1)
    return pooled


def _split_round(pooled: np.ndarray, probs: np.ndarray, alphabet: _Alphabet, round_keys: dict[str, int]) -> None:
    """Adds each frame's "0"-glyph probability to the round letters' columns (in place), shared among
    them in proportion to their own glyphs' probabilities at that frame (see _ROUND_LETTERS)."""
    if not round_keys:
        return
    letters = [round_keys[k] for k in sorted(round_keys)]
    own_columns = {c for k in round_keys for c in alphabet.columns[k[0]]}
    zero_columns = sorted(set(alphabet.columns.get("0", ())) - own_columns)
    if not zero_columns:
        return
    zero = probs[:, zero_columns].sum(axis=1)
    own = pooled[:, letters]
    weights = own / np.maximum(own.sum(axis=1, keepdims=True), _EPS)
    pooled[:, letters] = own + weights * zero[:, None]


def decode(
    probabilities: np.ndarray,
    characters: Sequence[str],
    layouts: dict[str, str] | None = None,
    penalties: dict[str, float] | None = None,
) -> list[Decoding]:
    """Every layout's best reading of ``probabilities`` (T x C), best first.

    ``penalties`` (log-probability, by layout name) are a prior against layouts that the plate's
    colour makes unlikely: a blue plate is no eight-character new-energy plate.
    """
    layouts = LAYOUTS if layouts is None else layouts
    alphabet = _alphabet(characters)
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] < 2 or probs.shape[1] != alphabet.size:
        return []
    # Glyph variants pooled into their plate character: per character, the frame-wise sum.  Where a
    # position cannot hold digits (or letters), a digit (letter) look-alike is evidence too: "8" read
    # where only a letter may stand is a B.  Such a position's characters get keys of their own.
    keys, sets_by_layout = _plan(alphabet, layouts)
    pooled = np.stack([_pool(probs, *_key_columns(alphabet, k)) for k in keys], axis=1)
    _split_round(pooled, probs, alphabet, {k: i for i, k in enumerate(keys) if k.endswith("#round")})
    chars_needed = [k[0] for k in keys]
    blank = probs[:, 0] + (probs[:, list(alphabet.separators)].sum(axis=1) if alphabet.separators else 0.0)
    non_blank_best = np.max(probs[:, 1:], axis=1)
    log_blank = np.log(np.maximum(blank, _EPS))
    # Skipping a frame costs nothing where the recogniser saw a gap, a price where it saw a character.
    log_wild = np.where(blank >= non_blank_best, log_blank, np.log(np.maximum(non_blank_best, _EPS)) - _SKIP_COST)
    results = []
    for name, sets in sets_by_layout.items():
        decoding = _viterbi(pooled, log_blank, log_wild, sets, chars_needed, name)
        if decoding is not None:
            penalty = (penalties or {}).get(name, 0.0)
            results.append(replace(decoding, log_score=decoding.log_score - penalty) if penalty else decoding)
    results.sort(key=lambda d: d.log_score, reverse=True)
    return results


def _viterbi(
    pooled: np.ndarray,
    log_blank: np.ndarray,
    log_wild: np.ndarray,
    sets: list[list[int]],
    chars: list[str],
    name: str,
) -> Decoding | None:
    """Best CTC path spelling one character of each set in order, with skippable frames around it.

    States: 0 = before the plate, then the CTC extended sequence (blank, label 1, blank, ...,
    label L, blank), then "after the plate".  A state is entered from itself, from the state
    before it, or (a label from the label before it, when they are different characters, and
    "after" from the last label) from two states before.
    """
    frames = pooled.shape[0]
    labels = len(sets)
    if frames < labels:
        return None
    states = 2 * labels + 3
    after = states - 1
    label_states = np.arange(2, 2 * labels + 1, 2)
    emission = np.empty((frames, states))
    emission[:, 0] = log_wild
    emission[:, after] = log_wild
    emission[:, 1 : 2 * labels + 2 : 2] = log_blank[:, None]
    choice = np.empty((frames, labels), dtype=np.int64)
    # Staying in a label keeps its character: the frame scores the character the frame before chose.
    staying = emission.copy()
    every = np.arange(frames)
    for k, members in enumerate(sets):
        block = pooled[:, members]
        best = block.argmax(axis=1)
        choice[:, k] = np.asarray(members)[best]
        emission[:, label_states[k]] = np.log(np.maximum(block[every, best], _EPS))
        staying[1:, label_states[k]] = np.log(np.maximum(pooled[every[1:], choice[:-1, k]], _EPS))
    # Jumps over one state: into a label from the label before it (different characters only),
    # into the first label from "before", into "after" from the last label.
    jump = np.zeros((frames, states), dtype=bool)
    jump[:, 2] = True
    jump[:, after] = True
    if labels > 1:
        jump[1:, label_states[1:]] = choice[:-1, :-1] != choice[1:, 1:]
    score = np.full(states, -np.inf)
    score[0], score[1], score[2] = emission[0, 0], emission[0, 1], emission[0, 2]
    back = np.zeros((frames, states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    candidates = np.full((3, states), -np.inf)
    for t in range(1, frames):
        candidates[0] = score + staying[t]
        candidates[1, 1:] = score[:-1] + emission[t, 1:]
        candidates[2, 2:] = np.where(jump[t, 2:], score[:-2], -np.inf) + emission[t, 2:]
        move = candidates.argmax(axis=0)
        back[t] = move
        score = candidates[move, np.arange(states)]
    end = max((after, after - 1, after - 2), key=lambda s: score[s])
    if not math.isfinite(score[end]):
        return None
    path = np.empty(frames, dtype=np.int64)
    state = end
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return _spell(pooled, sets, chars, path, label_states, float(score[end]), name)


def _spell(
    pooled: np.ndarray,
    sets: list[list[int]],
    chars: list[str],
    path: np.ndarray,
    label_state: np.ndarray,
    log_score: float,
    name: str,
) -> Decoding | None:
    """Each position's character: the set member with the most probability over the frames it holds."""
    spelled: list[CharScore] = []
    first: int | None = None
    last = 0
    for k, members in enumerate(sets):
        frames = np.flatnonzero(path == label_state[k])
        if frames.size == 0:
            return None
        first = int(frames[0]) if first is None else first
        last = int(frames[-1])
        block = pooled[np.ix_(frames, np.asarray(members, dtype=np.int64))]
        member = int(block.sum(axis=0).argmax())
        peak = int(block[:, member].argmax())
        p = float(block[peak, member])
        share = p / max(float(block[peak].sum()), 1e-12)
        at = (float(frames[peak]) + 0.5) / len(path)
        spelled.append(CharScore(chars[members[member]], p, share, at))
    frames_total = len(path)
    span = (float(first) / frames_total, float(last + 1) / frames_total) if first is not None else (0.0, 1.0)
    return Decoding("".join(c.char for c in spelled), name, log_score, tuple(spelled), span)
