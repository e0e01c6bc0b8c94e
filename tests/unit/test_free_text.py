"""Free-text fields refuse control characters anywhere and text nobody can see."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from pydantic import TypeAdapter, ValidationError

from shop.free_text import FORBIDDEN, FORBIDDEN_IN_MULTILINE, LongText, OptionalText, Text

BIDI_CONTROLS = {*range(0x202A, 0x202F), *range(0x2066, 0x206A)}
text, optional_text, long_text = TypeAdapter(Text), TypeAdapter(OptionalText), TypeAdapter(LongText)


def _error_type(adapter: TypeAdapter[str], value: str) -> str:
    with pytest.raises(ValidationError) as caught:
        adapter.validate_python(value)
    return caught.value.errors()[0]["type"]


def test_the_refused_set_is_exactly_controls_surrogates_line_separators_and_bidi_controls() -> None:
    for code in range(sys.maxunicode + 1):
        expected = unicodedata.category(chr(code)) in {"Cc", "Cs", "Zl", "Zp"} or code in BIDI_CONTROLS
        assert bool(FORBIDDEN.match(chr(code))) == expected, f"U+{code:04X}"
        layout = chr(code) in "\t\n\r"
        assert bool(FORBIDDEN_IN_MULTILINE.match(chr(code))) == (expected and not layout), f"U+{code:04X}"


@pytest.mark.parametrize(
    "value",
    ["Ada\x00Lovelace", "Ada\n", "\tAda", "Ada\x1b[31m", "Ada\x7f", "Ada\x85", "Ada\u2028", "\u202eadA", "Ada\u2066"],
)
def test_control_characters_are_refused_anywhere_even_at_the_ends(value: str) -> None:
    assert _error_type(text, value) == "control_character"
    assert _error_type(optional_text, value) == "control_character"


@pytest.mark.parametrize(
    "value",
    [
        "\u200b",  # zero-width space
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width (non-)joiners, word joiner, BOM
        "\u00a0\u3000\u2003",  # no-break, ideographic and em spaces
        "\u00ad",  # soft hyphen
        "\u0301\u034f\ufe0f",  # combining marks with nothing to combine with
        "\u3164",  # Hangul filler: a letter by category, blank in every font
        "\u115f\u1160\uffa0\u2800",  # the other fillers and the blank braille pattern
        "\U000e0041\U000e0064\U000e0061",  # tag characters
        "   ",
    ],
)
def test_text_of_only_invisible_characters_is_refused(value: str) -> None:
    assert _error_type(text, value) == "invisible_text"
    assert _error_type(optional_text, value + "\u200b") == "invisible_text"  # not only spaces: not empty


@pytest.mark.parametrize(
    "value", ["Ada Lovelace", "Zoë O'Brien-Núñez", "محمد\u200cعلی", "👩\u200d💻", "李小龍", "e\u0301", "Straße 1"]
)
def test_real_names_pass_unchanged(value: str) -> None:
    assert text.validate_python(value) == value


def test_surrounding_spaces_are_trimmed_and_an_empty_optional_line_is_allowed() -> None:
    assert text.validate_python("  Ada  ") == "Ada"
    assert optional_text.validate_python("   ") == ""
    assert optional_text.validate_python("") == ""


def test_a_multiline_description_keeps_its_line_breaks_but_not_other_controls() -> None:
    assert long_text.validate_python("Mug.\r\n\tDishwasher safe.") == "Mug.\r\n\tDishwasher safe."
    assert _error_type(long_text, "Mug\x00") == "control_character"
