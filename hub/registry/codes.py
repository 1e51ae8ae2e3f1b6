"""Codes the hub checks on arrival: 9-digit area codes and unified social credit codes.

- 行政区划 (area code, DOMAIN.md "Data record": 9 digits): the 6-digit county code of GB/T 2260
  followed by the 3-digit township/street code of GB/T 10114. We check the shape and that the
  first two digits name a province-level division; whether the county still exists is a
  question for the jurisdiction's data, not for a format check.
- 统一社会信用代码 (unified social credit code, GB 32100-2015, `deptCode`): 18 characters
  from 0-9 and A-Z without I, O, Z, S, V; the last one is a check character over the first 17
  (weights 3^i mod 31). A typo in a department code would attribute ratings to the wrong
  unit, so a code whose check character does not match is refused, with the expected one named.
"""

from __future__ import annotations

AREA_CODE_LEN = 9  # GB/T 2260 (6) + GB/T 10114 (3)

# First two digits of GB/T 2260 province-level divisions (incl. 71 Taiwan, 81 HK, 82 Macao).
PROVINCE_PREFIXES = frozenset(str(n) for n in (
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
    50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
))  # fmt: skip

USCC_LEN = 18
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 table: 31 characters
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31


class CodeError(ValueError):
    """A code is malformed; the message is (zh-CN, en)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


def check_area_code(code: str) -> str:
    """Return `code` if it is a 9-digit 行政区划 code, else raise CodeError."""
    if len(code) != AREA_CODE_LEN or not code.isascii() or not code.isdigit():
        raise CodeError(
            f"行政区划代码必须是 {AREA_CODE_LEN} 位数字：{code!r}",
            f"an area code (行政区划) is {AREA_CODE_LEN} digits: {code!r}",
        )
    if code[:2] not in PROVINCE_PREFIXES:
        raise CodeError(
            f"行政区划代码 {code} 的前两位 {code[:2]} 不是省级行政区划代码（GB/T 2260）",
            f"area code {code}: {code[:2]} is not a province-level code (GB/T 2260)",
        )
    return code


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a credit code."""
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def check_uscc(code: str) -> str:
    """Return `code` if it is a valid 18-character unified social credit code."""
    if len(code) != USCC_LEN:
        raise CodeError(
            f"统一社会信用代码必须是 {USCC_LEN} 个字符，收到 {len(code)} 个",
            f"a unified social credit code has {USCC_LEN} characters, got {len(code)}",
        )
    bad = [ch for ch in code if ch not in USCC_ALPHABET]
    if bad:
        raise CodeError(
            f"统一社会信用代码含有不允许的字符 {bad[0]!r}"
            "（只用 0-9 和除 I、O、Z、S、V 外的大写字母）",
            f"unified social credit code has the character {bad[0]!r} "
            "(allowed: 0-9 and capital letters except I, O, Z, S, V)",
        )
    if not code[2:8].isdigit():
        raise CodeError(
            f"统一社会信用代码第 3–8 位应为行政区划代码（数字）：{code[2:8]!r}",
            f"characters 3-8 of a unified social credit code are an area code: {code[2:8]!r}",
        )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise CodeError(
            f"统一社会信用代码 {code} 校验位错误：应为 {expected}，实为 {code[17]}（GB 32100）",
            f"unified social credit code {code}: check character should be {expected}, "
            f"is {code[17]} (GB 32100)",
        )
    return code
