"""Vehicle licence (行驶证) fields from OCR lines, by their printed labels and the page's geometry.

Both pages print a label (号牌号码, 车辆类型, ...) with its value to the right on the same
row, two label/value pairs on some rows.  The OCR may return a label and its value as one
line ("号牌号码 沪A12345"), as two boxes, or even a whole row as one line; so each line is
first cut into label and value pieces (with an estimated x-range for each), and then every
value piece goes to the nearest label on its left on the same row.  The page may be
photographed at a slight angle: coordinates are de-skewed by the median angle of the text
lines before rows are compared.

A seal, glare or a fold may hide part of a label: what is left still names its field when
only one field has those characters ("动机号码"), or when the rest of the page leaves only one
("日期" beside a 发证日期 is the 注册日期).  A VIN and a 使用性质 are also recognised by their
shape and vocabulary when their label is lost.

The issuing authority is not labelled: it is the red seal (…公安局交通警察支队), see
:mod:`vehicle_ocr_local.engine.authority`; text inside a seal is never a field's value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from vehicle_ocr.errors import PipelineError
from vehicle_ocr.normalize.values import to_half_width
from vehicle_ocr.normalize.vehicle_license import VEHICLE_LICENSE_FIELDS
from vehicle_ocr.normalize.vin import normalize_vin, vin_check_digit_valid
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr_local.engine.authority import AUTHORITY_WORDING, read_authority
from vehicle_ocr_local.engine.colors import red_ink
from vehicle_ocr_local.engine.ocr import PROVIDER, OcrLine, read_page
from vehicle_ocr_local.engine.plates import clean_text, plate_in_text
from vehicle_ocr_local.engine.seal import Seal, find_seals, read_seals

# Printed labels, apizero field name -> spellings (longest tried first when they overlap).
LABELS: dict[str, tuple[str, ...]] = {
    "plate_number": ("号牌号码",),
    "vehicle_type": ("车辆类型",),
    "owner": ("所有人",),
    "address": ("住址",),
    "use_character": ("使用性质",),
    "model": ("品牌型号",),
    "vin": ("车辆识别代号", "车辆识别代码"),
    "engine_number": ("发动机号码", "发动机号"),
    "register_date": ("注册日期",),
    "issue_date": ("发证日期",),
    "license_issuing_authority": ("发证机关",),
    "document_id": ("档案编号",),
    "approved_passengers_capacity": ("核定载人数",),
    "total_mass": ("总质量",),
    "curb_weight": ("整备质量",),
    "ratified_load_capacity": ("核定载质量",),
    "gabarite": ("外廓尺寸",),
    "traction_mass": ("准牵引总质量",),
    "remarks": ("备注",),
    "inspection_record": ("检验记录",),
}
_SPELLINGS: list[tuple[str, str]] = sorted(
    ((spelling, name) for name, spellings in LABELS.items() for spelling in spellings), key=lambda s: -len(s[0])
)


def _fragments() -> list[tuple[str, str]]:
    """Pieces of the longer labels that name one field only ("动机号码", "识别代号"), longest first.

    A seal or a fold can hide part of a label; what is left still identifies it.
    """
    counts: dict[str, set[str]] = {}
    for spelling, name in _SPELLINGS:
        for size in range(2, len(spelling)):
            for start in range(len(spelling) - size + 1):
                counts.setdefault(spelling[start : start + size], set()).add(name)
    fragments = {}
    for spelling, name in _SPELLINGS:
        if len(spelling) < 4:
            continue
        for size in range(max(2, len(spelling) // 3), len(spelling)):
            for start in range(len(spelling) - size + 1):
                piece = spelling[start : start + size]
                if counts[piece] == {name}:
                    fragments[piece] = name
    return sorted(fragments.items(), key=lambda item: -len(item[0]))


_FRAGMENTS = _fragments()


def _ambiguous() -> dict[str, frozenset[str]]:
    """Pieces of labels shared by several fields ("日期", "号码", "质量") and labels' first and last
    characters: alone on a line they are what is left of a label, but of which one only the rest
    of the page can tell (each label is printed once per page)."""
    owners: dict[str, set[str]] = {}
    for spelling, name in _SPELLINGS:
        pieces = {spelling[0], spelling[-1]}
        if len(spelling) >= 4:
            pieces |= {
                spelling[i : i + size] for size in range(2, len(spelling)) for i in range(len(spelling) - size + 1)
            }
        for piece in pieces:
            owners.setdefault(piece, set()).add(name)
    unique = {fragment for fragment, _ in _FRAGMENTS}
    return {piece: frozenset(names) for piece, names in owners.items() if piece not in unique and len(piece) <= 3}


_AMBIGUOUS = _ambiguous()
# Values of 使用性质 (GA 801 vehicle use codes): recognisable without their label.
USE_CHARACTERS = frozenset(
    {
        "非营运",
        "营运",
        "公路客运",
        "公交客运",
        "出租客运",
        "旅游客运",
        "租赁",
        "货运",
        "教练",
        "警用",
        "消防",
        "救护",
        "工程救险",
        "营转非",
        "出租转非",
        "预约出租客运",
        "预约出租转非",
        "幼儿校车",
        "小学生校车",
        "初中生校车",
        "中小学生校车",
        "其他校车",
        "危化品运输",
        "非营业",
        "营业",
    }
)
# The English captions printed under or beside the labels on the bilingual layout.
_ENGLISH_CAPTIONS = re.compile(
    r"(?<![A-Za-z])(?:plate\s*no|vehicle\s*type|owner|address|use\s*character|model|vin|engine\s*no|"
    r"register(?:ation)?\s*date|issue\s*date|issuing\s*authority|file\s*no|approved\s*passengers?|"
    r"gross\s*mass|total\s*mass|unladen\s*mass|curb\s*(?:weight|mass)|approved\s*load|"
    r"overall\s*dimensions?(?:\s*of)?|traction\s*mass|remarks?|inspection\s*records?)(?![A-Za-z])\.?",
    re.IGNORECASE,
)
_EDGE_PUNCTUATION = " \t:：;；,，、|"
_DASHES = re.compile(r"[\s\-‐‑‒–—_~/]*")
_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?")
_PASSENGERS = re.compile(r"\d+\s*人?")
_MASS = re.compile(r"\d[\d,]*\s*(?:kg|千克|公斤)?", re.IGNORECASE)
_DIMENSIONS = re.compile(r"\d+\s*[xX×*✕]\s*\d+\s*[xX×*✕]\s*\d+\s*(?:mm|毫米)?", re.IGNORECASE)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORDS = re.compile(r"[A-Za-z][A-Za-z.'’-]*(?:\s+[A-Za-z][A-Za-z.'’-]*)*")
_UNITS = {"kg", "mm", "km", "t"}
_VIN_SHAPE = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{17}(?![0-9A-Z])")
_MAX_GAP = 5.0  # label heights between a label (or the value so far) and the next piece of its value
# Labels printed on the front page (主页) only: the seal is looked for only when one is present.
_FRONT_ONLY = {
    "vehicle_type",
    "owner",
    "address",
    "use_character",
    "model",
    "vin",
    "engine_number",
    "register_date",
    "issue_date",
}
_MULTI_LINE = {"owner", "address", "model", "remarks", "inspection_record"}


@dataclass
class _Piece:
    """A label or a value: text and its (de-skewed) box."""

    text: str
    x0: float
    x1: float
    y0: float
    y1: float
    score: float = 1.0
    label: str | None = None
    values: list[_Piece] = field(default_factory=list)
    maybe: frozenset[str] = frozenset()  # what is left of a label, if it is one: the fields it may be
    weak: bool = False  # a label guessed from a fragment: its value must be on its own row

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


def _char_width(char: str) -> float:
    if _CJK.match(char) or "\u3000" <= char <= "\u303f" or "\uff00" <= char <= "\uffef":
        return 1.0
    return 0.3 if char.isspace() else 0.55


def _find_labels(text: str) -> list[tuple[int, int, str]]:
    """(start, end, field) of each label in ``text`` (indices into ``text``), left to right.

    Exact spellings anywhere; a spelling of four or more characters with one misread
    character, or a three-character one that is the whole line, only at the line's start.
    Whitespace inside a label ("号牌 号码") is tolerated.
    """
    compact_chars = [(i, c) for i, c in enumerate(text) if not c.isspace()]
    compact = "".join(c for _, c in compact_chars)
    found: list[tuple[int, int, str]] = []
    position = 0
    while position < len(compact):
        hit = next(((s, n) for s, n in _SPELLINGS if compact.startswith(s, position)), None)
        if hit is None and position == 0:
            hit = _fuzzy_label(compact)
        if hit is None:
            position += 1
            continue
        spelling, name = hit
        end = position + len(spelling)
        found.append((compact_chars[position][0], compact_chars[end - 1][0] + 1, name))
        position = end
    return found


def _fuzzy_label(compact: str) -> tuple[str, str] | None:
    """A misread or partly hidden label at the start of a line: (the characters it covers, field)."""
    whole = compact.rstrip(_EDGE_PUNCTUATION)
    for fragment, name in _FRAGMENTS:
        # Two characters ("检验") also begin values ("检验有效期至…"): only a line of their own is a label.
        if compact.startswith(fragment) and (len(fragment) >= 3 or whole == fragment):
            return fragment, name
    # One character misread, dropped or added, in a label (or a unique part of one) of four or more.
    best: tuple[int, int, str] | None = None
    for spelling, name in _SPELLINGS + _FRAGMENTS:
        size = len(spelling)
        if size < 4:
            continue
        for length in (size, size - 1, size + 1):
            if length > len(compact):
                continue
            if _within_one_edit(compact[:length], spelling) and (best is None or size > best[0]):
                best = (size, length, name)
    if best is not None:
        return compact[: best[1]], best[2]
    # A three-character label with one character misread, alone on its line ("所有入").
    for spelling, name in _SPELLINGS:
        if len(spelling) == 3 and len(whole) == 3 and sum(a != b for a, b in zip(whole, spelling, strict=True)) == 1:
            return whole, name
    return None


def _within_one_edit(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _skew(lines: Sequence[OcrLine]) -> float:
    """Median angle (radians) of the top edges of the wider lines: the page's rotation."""
    angles = []
    for line in lines:
        (ax, ay), (bx, by) = line.box[0], line.box[1]
        if bx - ax > 2.5 * line.height:
            angles.append(math.atan2(by - ay, bx - ax))
    return float(np.median(angles)) if angles else 0.0


def _pieces(lines: Sequence[OcrLine], red: Sequence[bool]) -> tuple[list[_Piece], list[_Piece], list[_Piece]]:
    """(labels, values, seal texts), each with de-skewed boxes."""
    angle = _skew(lines)
    cos, sin = math.cos(angle), math.sin(angle)
    labels: list[_Piece] = []
    values: list[_Piece] = []
    seal: list[_Piece] = []
    for line, is_red in zip(lines, red, strict=True):
        xs = [x * cos + y * sin for x, y in line.box]
        ys = [-x * sin + y * cos for x, y in line.box]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        text = line.text
        found = _find_labels(text)
        if is_red and not found:
            seal.append(_Piece(text, x0, x1, y0, y1, line.score))
            continue
        # Cut the line at its labels; estimate each piece's x-range from character widths.
        widths = [_char_width(c) for c in text]
        total = sum(widths) or 1.0
        scale = (x1 - x0) / total

        def span(start: int, end: int, x0: float = x0, widths: list[float] = widths, scale: float = scale):
            return x0 + sum(widths[:start]) * scale, x0 + sum(widths[:end]) * scale

        cuts = [0]
        for start, end, name in found:
            cuts += [start, end]
            left, right = span(start, end)
            labels.append(_Piece(text[start:end], left, right, y0, y1, line.score, label=name))
        cuts.append(len(text))
        for start, end in zip(cuts[::2], cuts[1::2], strict=True):
            piece = _value_text(text[start:end])
            if piece:
                left, right = span(start, end)
                maybe = _AMBIGUOUS.get(piece.strip(_EDGE_PUNCTUATION), frozenset()) if not found else frozenset()
                values.append(_Piece(piece, left, right, y0, y1, line.score, maybe=maybe))
    return labels, values, seal


def _value_text(text: str) -> str:
    """A value piece without the English captions the OCR read into it ("Overall Dimension", "Plate No.")."""
    text = _ENGLISH_CAPTIONS.sub(" ", text)
    text = _LATIN_WORDS.sub(lambda m: " " if _is_caption(m.group(0)) else m.group(0), text)
    return text.strip(_EDGE_PUNCTUATION)


def _is_caption(text: str) -> bool:
    """English words (or what the OCR made of the small caption print): lower-case letters, hardly any digits."""
    lower = sum(c.islower() for c in text)
    digits = sum(c.isdigit() for c in text)
    return lower >= 2 and digits <= 1 and text.strip().lower() not in _UNITS


def _same_row(label: _Piece, value: _Piece) -> bool:
    overlap = min(label.y1, value.y1) - max(label.y0, value.y0)
    return overlap >= 0.45 * min(label.height, value.height) or abs(label.cy - value.cy) < 0.35 * label.height


def _assign_rows(labels: Sequence[_Piece], values: list[_Piece]) -> list[_Piece]:
    """Give each value to the nearest label on its left on the same row; returns the values left over."""
    left_over = []
    for value in sorted(values, key=lambda piece: piece.x0):
        owners = [
            label
            for label in labels
            if label.x0 < value.x0 and label.x1 <= value.x0 + 0.6 * label.height and _same_row(label, value)
        ]
        owner = max(owners, key=lambda label: label.x1) if owners else None
        # Close to its label, or continuing the label's value (pieces of one long value); a value far
        # to the right belongs to something else (the other page lying beside this one).
        reach = max([owner.x1, *(piece.x1 for piece in owner.values)]) if owner else 0.0
        if owner and value.x0 - reach <= _MAX_GAP * owner.height:
            owner.values.append(value)
        else:
            left_over.append(value)
    return left_over


def _resolve_fragments(labels: Sequence[_Piece], left_over: list[_Piece]) -> list[_Piece]:
    """Left-over pieces that are what remains of a label ("日期" where 注册日期 was half covered by the
    seal) become that label when the page's other labels leave only one field it can be.  They are
    taken out of ``left_over`` and returned as (weak) labels."""
    present = {label.label for label in labels}
    resolved = []
    for piece in list(left_over):
        remaining = piece.maybe - present
        if len(remaining) == 1:
            (name,) = remaining
            resolved.append(replace(piece, label=name, values=[], weak=True))
            present.add(name)
            left_over.remove(piece)
    return resolved


def _below(labels: Sequence[_Piece], left_over: list[_Piece]) -> list[_Piece]:
    """Continuation lines (a long address wraps under its first line) and values printed under their label."""
    for label in sorted(labels, key=lambda piece: piece.cy):
        if label.weak or (label.values and label.label not in _MULTI_LINE):
            continue
        while True:
            last = max(label.values, key=lambda piece: piece.y1) if label.values else label
            start = min(piece.x0 for piece in label.values) if label.values else label.x0
            below = [
                piece
                for piece in left_over
                if -0.3 * last.height <= piece.y0 - last.y1 <= 1.5 * last.height
                and abs(piece.x0 - start) <= 1.5 * last.height
                and 0.6 <= piece.height / last.height <= 1.6
                and not _starts_own_row(piece, labels, left_over)
                and (label.label == "use_character" or tidy(piece.text) not in USE_CHARACTERS)
            ]
            if not below:
                break
            chosen = min(below, key=lambda piece: piece.y0)
            chosen.y0 = max(chosen.y0, last.y1)  # keep it below the line it continues
            label.values.append(chosen)
            left_over.remove(chosen)
    return left_over


def _starts_own_row(piece: _Piece, labels: Sequence[_Piece], left_over: Sequence[_Piece]) -> bool:
    """Something (an unread label, a fragment of one) stands to the piece's left on its row: the row is
    another field's, not the continuation of the line above."""
    return any(
        other is not piece
        and piece.x0 - (_MAX_GAP + 1) * piece.height <= other.x1 <= piece.x0 + 0.3 * piece.height
        and _same_row(other, piece)
        for other in [*labels, *left_over]
    )


def _join(pieces: Sequence[_Piece]) -> str:
    """Pieces in reading order (rows top to bottom, left to right), joined; spaces kept only between Latin words."""
    rows: list[list[_Piece]] = []
    for piece in sorted(pieces, key=lambda p: p.cy):
        if rows and abs(rows[-1][0].cy - piece.cy) < 0.5 * piece.height:
            rows[-1].append(piece)
        else:
            rows.append([piece])
    text = " ".join(" ".join(p.text for p in sorted(row, key=lambda p: p.x0)) for row in rows)
    return tidy(text)


def tidy(text: str) -> str:
    """Collapse whitespace; drop it next to an ideograph or full-width character (OCR inserts such spaces)."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])", "", text)


def _clean_value(name: str, text: str) -> str:
    """The value as printed, with OCR noise around it removed; "" for a blank or dashed-out field."""
    text = tidy(text)
    if not _DASHES.sub("", text):
        return ""
    half = to_half_width(text)
    if name == "plate_number":
        return plate_in_text(text) or clean_text(text)
    if name in ("vin", "engine_number", "document_id"):
        return re.sub(r"[^0-9A-Za-z]", "", half).upper()
    if name in ("register_date", "issue_date"):
        match = _DATE.search(half)
        return re.sub(r"\s+", "", match.group(0)) if match else text
    if name == "approved_passengers_capacity":
        match = _PASSENGERS.search(half)
        return re.sub(r"\s+", "", match.group(0)) if match else text
    if name in ("total_mass", "curb_weight", "ratified_load_capacity", "traction_mass"):
        match = _MASS.search(half)
        return re.sub(r"\s+", "", match.group(0)) if match else text
    if name == "gabarite":
        match = _DIMENSIONS.search(half)
        return re.sub(r"\s+", "", match.group(0)) if match else text
    return text


def _straight_authority(red: Sequence[_Piece], others: Sequence[_Piece]) -> str:
    """An authority printed in straight lines: red text worded like one, else any such line."""
    if red:
        match = AUTHORITY_WORDING.search(re.sub(r"[^\u4e00-\u9fff]", "", _join(red)))
        if match:
            return match.group(0)
    for piece in others:
        match = AUTHORITY_WORDING.search(re.sub(r"\s+", "", piece.text))
        if match:
            return match.group(0)
    return ""


def parse_license(rgb: np.ndarray, lines: Sequence[OcrLine]) -> dict[str, str]:
    """The 20 apizero fields found on one page (either page, or both on one image); "" when absent.

    Raises PipelineError NO_LICENSE_FOUND when no field label is on the page at all.
    """
    front = any(name in _FRONT_ONLY for line in lines for _, _, name in _find_labels(line.text))
    seals = find_seals(rgb) if front else []
    in_seal: list[OcrLine] = []
    if seals:
        # Text inside a seal is no field's value: fragments of its curved text, or its straight lines.
        in_seal = [line for line in lines if not _label_like(line.text) and _inside_seal(line, seals)]
        lines = [line for line in lines if not any(line is inside for inside in in_seal)]
    # Red text is a seal printed in straight lines (a round seal has been dealt with above); black
    # print under a seal can look red too, so what reads as a label never counts as seal text.
    red = [
        not seals and not _label_like(line.text) and red_ink(rgb, line.x0, line.y0, line.x1, line.y1) for line in lines
    ]
    labels, values, red_pieces = _pieces(lines, red)
    if not labels:
        raise PipelineError(PROVIDER, "NO_LICENSE_FOUND", "no vehicle-licence field label was found in the image")
    left_over = _assign_rows(labels, values)
    guessed = _resolve_fragments(labels, left_over)
    if guessed:
        left_over = _assign_rows(guessed, left_over)
        labels = labels + guessed
    left_over = _below(labels, left_over)
    fields = dict.fromkeys(VEHICLE_LICENSE_FIELDS, "")
    for label in labels:
        name = label.label or ""
        value = _clean_value(name, _join(label.values)) if label.values else ""
        if value and not fields[name]:  # the first reading wins (号牌号码 is on both pages)
            fields[name] = value
    if not fields["vin"]:
        # A seal or glare may hide the label; a VIN is recognisable on its own.
        fields["vin"] = _vin_by_shape(left_over)
    if not fields["use_character"]:
        fields["use_character"] = next((tidy(p.text) for p in left_over if tidy(p.text) in USE_CHARACTERS), "")
    if not fields["license_issuing_authority"]:
        fields["license_issuing_authority"] = _authority(rgb, seals, in_seal, red_pieces, left_over, fields)
    return fields


def _authority(
    rgb: np.ndarray,
    seals: Sequence[Seal],
    in_seal: Sequence[OcrLine],
    red: Sequence[_Piece],
    left_over: Sequence[_Piece],
    fields: dict[str, str],
) -> str:
    """The issuing authority: straight text inside a round seal if it reads as one, else the seal's
    arc; without a round seal, red (or any) straight text worded like an authority."""
    if seals:
        inside = re.sub(r"[^\u4e00-\u9fff]", "", "".join(line.text for line in _reading_order(in_seal)))
        straight = AUTHORITY_WORDING.fullmatch(inside)
        if straight:
            return straight.group(0)
        return read_authority(read_seals(rgb, list(seals)), fields["plate_number"], fields["address"])
    return _straight_authority(red, left_over)


def _reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Top to bottom, then left to right within a row."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: item.cy):
        if rows and abs(rows[-1][0].cy - line.cy) < 0.5 * line.height:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item.x0)]


def _label_like(text: str) -> bool:
    """A label, or what is left of one."""
    return bool(_find_labels(text)) or re.sub(r"\s+", "", text).strip(_EDGE_PUNCTUATION) in _AMBIGUOUS


def _inside_seal(line: OcrLine, seals: Sequence[Seal]) -> bool:
    """Mostly inside a seal: its centre and at least two corners."""
    centre = ((line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2)
    return any(seal.contains(*centre) and sum(seal.contains(x, y) for x, y in line.box) >= 2 for seal in seals)


def _vin_by_shape(pieces: Sequence[_Piece]) -> str:
    found = []
    for piece in pieces:
        compact = re.sub(r"[\s\-]", "", to_half_width(piece.text))
        found += [m.group(0) for m in _VIN_SHAPE.finditer(compact) if sum(c.isdigit() for c in m.group(0)) >= 3]
    valid = [vin for vin in found if vin_check_digit_valid(normalize_vin(vin))]
    return (valid or found or [""])[0]


class LocalVehicleLicenseRecognizer:
    """Vehicle licences with the offline engine: payload is apizero's 20-field ``data`` object."""

    name = PROVIDER
    kind = "vehicle_license"

    def __repr__(self) -> str:
        return "LocalVehicleLicenseRecognizer()"

    def recognize(self, image: bytes) -> ProviderAnswer:
        page = read_page(image)
        return ProviderAnswer(provider=self.name, payload=parse_license(page.rgb, page.lines))
