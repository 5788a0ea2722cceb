"""The issuing authority (发证机关) printed only in the seal: read, then checked against what it can be.

A 行驶证 is issued by the traffic police of the place where the vehicle is registered, and
the seal carries that body's official name: ``<省><市>公安局交通警察支队`` for a prefecture,
``<直辖市>公安局交通警察总队`` (or a 交通管理局) for the four municipalities.  The page itself
says where: the plate's province character and the owner's address (``浙江省杭州市…``).

Seal ink is uneven and the unwrapped characters are distorted, so the recogniser's greedy
reading is often partly wrong.  Instead of trusting it, every official name the page makes
plausible is scored by how likely the recogniser finds it in the seal (CTC likelihood over
the same output), with a prior for the usual wording; the best one wins.  The greedy reading
is kept only when it is confident, reads as an authority, and matches none of those names
(say a county's 交通警察大队).  Without any place on the page, a reading that looks like an
authority is returned as read, else nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vehicle_ocr.normalize.plates import canonical_plate_number
from vehicle_ocr_local.engine.seal import SealReading

# Plate province character -> the province-level division's name (GA 36 / GB 2260).
PROVINCE_NAMES: dict[str, str] = {
    "京": "北京市",
    "津": "天津市",
    "沪": "上海市",
    "渝": "重庆市",
    "冀": "河北省",
    "豫": "河南省",
    "云": "云南省",
    "辽": "辽宁省",
    "黑": "黑龙江省",
    "湘": "湖南省",
    "皖": "安徽省",
    "鲁": "山东省",
    "新": "新疆维吾尔自治区",
    "苏": "江苏省",
    "浙": "浙江省",
    "赣": "江西省",
    "鄂": "湖北省",
    "桂": "广西壮族自治区",
    "甘": "甘肃省",
    "晋": "山西省",
    "蒙": "内蒙古自治区",
    "陕": "陕西省",
    "吉": "吉林省",
    "闽": "福建省",
    "贵": "贵州省",
    "粤": "广东省",
    "青": "青海省",
    "藏": "西藏自治区",
    "川": "四川省",
    "宁": "宁夏回族自治区",
    "琼": "海南省",
}
MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")

# Wordings of the issuing body with a log prior (0 = the usual one).  Prefecture-level
# bodies are 支队 (detachments); 总队 (corps) are provincial-level, so only municipalities
# (and provinces) issue as 总队.
_PREFECTURE_BODIES = (
    ("公安局交通警察支队", 0.0),
    ("公安局交通管理局", -6.0),
    ("公安局交通管理支队", -6.0),
    ("公安局交通警察大队", -8.0),
)
_MUNICIPAL_BODIES = (
    ("公安局交通警察总队", 0.0),
    ("公安局公安交通管理局", 0.0),
    ("公安局交通管理局", -4.0),
    ("公安局交通巡逻警察总队", -4.0),
)
# How an issuing body's name reads: a place, a police or traffic word, and a body.
AUTHORITY_WORDING = re.compile(
    r"[\u4e00-\u9fff]*?(?:公安|交警|交通)[\u4e00-\u9fff]*(?:支队|总队|大队|管理局|管理所|车管所|分局)"
)
_PROVINCE = re.compile(r"^[\u4e00-\u9fff]{2,7}?(?:省|自治区)")
_CITY = re.compile(r"^[\u4e00-\u9fff]{1,8}?(?:自治州|地区|盟|市)")
_CONFIDENT = 0.85  # mean per-character probability of a greedy reading worth keeping as read


@dataclass(frozen=True)
class Candidate:
    place: str  # what the page already tells: the province (or "" for a municipality)
    rest: str  # what the seal has to confirm: city and body ("杭州市公安局交通警察支队")
    prior: float

    @property
    def text(self) -> str:
        return self.place + self.rest


def candidates(plate_number: str, address: str) -> list[Candidate]:
    """Official names the page makes plausible, from the plate's province and the owner's address."""
    plate = canonical_plate_number(plate_number)
    from_plate = PROVINCE_NAMES.get(plate[:1], "")
    address = re.sub(r"\s+", "", address or "")
    municipality = next((m for m in MUNICIPALITIES if address.startswith(m)), "")
    if from_plate in MUNICIPALITIES and (not municipality or municipality == from_plate):
        municipality = from_plate
    if municipality:
        return [Candidate("", municipality + body, prior) for body, prior in _MUNICIPAL_BODIES]
    province_match = _PROVINCE.match(address)
    province = province_match.group(0) if province_match else ""
    if from_plate and province and from_plate != province:
        return []  # registered elsewhere than the owner lives: the address says nothing about the seal
    city_match = _CITY.match(address[len(province) :])
    if not city_match:
        return []
    return [Candidate(province or from_plate, city_match.group(0) + body, prior) for body, prior in _PREFECTURE_BODIES]


def read_authority(readings: Sequence[SealReading], plate_number: str, address: str) -> str:
    """The authority named by the seal(s), or "" when none can be read.

    The province part is not scored: seal ink is faintest at the ends of the arc, where it
    stands, and it is known from the page anyway.  City and body are scored against the seal.
    """
    if not readings:
        return ""
    options = candidates(plate_number, address)
    best_text, best_score = "", -math.inf
    greedy_text, greedy_confidence = "", 0.0
    for reading in readings:
        text, log_likelihood = reading.greedy()
        text = re.sub(r"[^\u4e00-\u9fff]", "", text)
        confidence = math.exp(log_likelihood / max(1, len(text))) if text else 0.0
        if confidence > greedy_confidence:
            greedy_text, greedy_confidence = text, confidence
        for option in options:
            score = reading.log_likelihood(option.rest) + option.prior
            if score > best_score:
                best_text, best_score = option.text, score
    read_as_authority = AUTHORITY_WORDING.search(greedy_text)
    if read_as_authority and greedy_confidence >= _CONFIDENT:
        legible = read_as_authority.group(0)
        if not best_text or min(_infix_distance(legible, o.text) for o in options) > max(2, len(legible) // 4):
            return legible  # clearly legible and not one of the expected names (nor a part of one)
    if best_text:
        return best_text
    return read_as_authority.group(0) if read_as_authority else ""


def _infix_distance(a: str, b: str) -> int:
    """Edits to turn ``a`` into some part of ``b`` (``b``'s ends are free): a reading that lost the
    faint first characters of the arc still matches the name it is part of."""
    previous = [0] * (len(b) + 1)
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return min(previous)
