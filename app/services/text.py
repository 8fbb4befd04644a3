"""What counts as empty text: the one rule for message bodies, announcements,
room names and topics."""
from __future__ import annotations

import unicodedata

# Unicode categories that draw nothing on their own: spaces and line or
# paragraph separators (Z*), control characters (Cc), and format characters
# (Cf: zero-width space, joiner and non-joiner, word joiner, BOM, bidi marks
# and isolates, soft hyphen, invisible times and separator, tag characters).
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
# Characters outside those categories that also render as nothing (Unicode's
# Default_Ignorable_Code_Point and blank look-alikes, which unicodedata does
# not expose): the combining grapheme joiner, the Hangul fillers (letters,
# Lo, that are blank by design), the Braille blank, and the variation
# selectors (marks, Mn, that only select another character's glyph).
_INVISIBLE_CHARACTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))


def _is_invisible(char: str) -> bool:
    if char in _INVISIBLE_CHARACTERS or char.isspace():
        return True
    code = ord(char)
    if any(low <= code <= high for low, high in _VARIATION_SELECTORS):
        return True
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES


def is_blank(text: str) -> bool:
    """True when ``text`` would show nothing: empty, or only invisible characters."""
    # The common case, a visible first character, costs one check.
    return all(_is_invisible(char) for char in text)
