"""What a free-text field of a request may hold: no control characters, and something a person can see.

Every text field of the input models (``shop.schemas``) is one of the types at
the bottom, so the JSON API and the checkout form refuse the same input with
the same error, before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

# Refused anywhere in a text field, each for a failure it would cause:
#   Cc      C0 and C1 controls and DEL. PostgreSQL refuses NUL (it answered 500);
#           CR and LF split a mail header or a log line; ESC starts terminal escapes
#           in the shell of the operator who greps the logs.
#   Cs      lone surrogates: not encodable as UTF-8, so no database or mail server can keep them.
#   Zl, Zp  U+2028 and U+2029: line breaks under another name.
#   U+202A-U+202E, U+2066-U+2069: the bidirectional embeddings, overrides and
#           isolates (Cf) reorder what an operator reads on the admin pages and the
#           invoice ("Trojan Source"); no name or address needs them.
# The other format characters (Cf) stay allowed inside text: ZWJ and ZWNJ are part of
# how Persian and Indic names and emoji sequences are spelled. This set is a regex
# rather than a category test so that the OpenAPI document can publish it as a
# pattern (schemathesis then generates strings outside it); a unit test checks that
# it is exactly the categories above over every code point.
_REFUSED_ABOVE_C0 = r"\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_FORBIDDEN_CLASS = r"\u0000-\u001f" + _REFUSED_ABOVE_C0
# The same but tab, LF and CR: in a multi-line field (a product description) they are layout.
_MULTILINE_CLASS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f" + _REFUSED_ABOVE_C0
# Surrogates are checked but not published: a JSON body holding one is already refused as
# malformed (400), and client regex engines (schemathesis's among them) refuse the range.
_SURROGATES = r"\ud800-\udfff"
FORBIDDEN = re.compile(f"[{_FORBIDDEN_CLASS}{_SURROGATES}]")
FORBIDDEN_IN_MULTILINE = re.compile(f"[{_MULTILINE_CLASS}{_SURROGATES}]")

# Draw nothing on their own, so a name made only of them is no name:
#   Zs      spaces: U+0020, NBSP, the en/em/thin spaces, the ideographic space.
#   Cf      format characters: zero-width space, ZWJ, ZWNJ, word joiner, BOM, soft hyphen, tags.
#   Mn, Me  combining marks: they decorate the character before them; alone they are empty
#           (U+034F, the variation selectors).
#   Cc, Cs, Zl, Zp are refused before this is asked.
INVISIBLE_CATEGORIES = frozenset({"Zs", "Cf", "Mn", "Me", "Cc", "Cs", "Zl", "Zp"})
# Letters and symbols by category that every font draws blank: the Hangul fillers
# (the usual way to make an "empty" user name) and the blank braille pattern.
BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_character(value: str) -> bool:
    return any(unicodedata.category(c) not in INVISIBLE_CATEGORIES and c not in BLANK_GLYPHS for c in value)


def _checked(value: str, forbidden: re.Pattern[str], required: bool) -> str:
    """``value`` without surrounding whitespace; refuses controls anywhere and text nobody can see."""
    found = forbidden.search(value)
    if found:
        raise PydanticCustomError(
            "control_character",
            "must not contain control or bidirectional formatting characters (found {character})",
            {"character": f"U+{ord(found.group()):04X}"},
        )
    value = value.strip()
    if (required or value) and not has_visible_character(value):
        raise PydanticCustomError(
            "invisible_text", "must contain a visible character, not only spaces or invisible characters"
        )
    return value


def one_line(value: str) -> str:
    return _checked(value, FORBIDDEN, required=True)


def optional_line(value: str) -> str:
    return _checked(value, FORBIDDEN, required=False)


def multiline(value: str) -> str:
    return _checked(value, FORBIDDEN_IN_MULTILINE, required=False)


# The published pattern tells clients (and schemathesis) which characters are refused.
_ONE_LINE_DOC = Field(json_schema_extra={"pattern": f"^[^{_FORBIDDEN_CLASS}]*$"})
_MULTILINE_DOC = Field(json_schema_extra={"pattern": f"^[^{_MULTILINE_CLASS}]*$"})

# Length limits count what the client sent; surrounding whitespace is stripped afterwards.
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(one_line), _ONE_LINE_DOC]
OptionalText = Annotated[str, StringConstraints(max_length=200), AfterValidator(optional_line), _ONE_LINE_DOC]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=20), AfterValidator(one_line), _ONE_LINE_DOC]
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(multiline), _MULTILINE_DOC]
