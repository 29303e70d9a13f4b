"""Phone number normalisation and the integer keys used for longest-prefix matching.

Normalisation (documented in ``docs/tariffs.md``), applied to every called number before rating:

1. Visual separators (space, ``-``, ``.``, ``(``, ``)``) are removed.
2. ``+44…`` → ``44…`` (E.164 with a plus); ``0044…`` → ``44…`` (the ``00`` international access code).
3. ``0…`` with a single leading zero is a national number: when the tariff names a ``country_code`` the trunk ``0``
   is replaced by it (``020…`` → ``4420…``); without one the number is kept as written.
4. What remains must be 1 to 18 digits, otherwise the number is rejected with the reason.

Keys: a normalised number of up to ``MAX_DIGITS`` digits is read as base-11 digits, each digit ``d`` stored as
``d + 1`` and an absent digit as ``0``. A prefix ``p`` of length ``L`` then covers exactly the half-open key range
``[key(p), key(p) + 11**(MAX_DIGITS - L))``, prefixes nest as ranges do, and the longest matching prefix of a number is
the innermost range holding its key. The empty number has key 0, which no prefix covers.
"""

from __future__ import annotations

import numpy as np

MAX_DIGITS = 18
_POWERS = np.array([11 ** (MAX_DIGITS - 1 - i) for i in range(MAX_DIGITS)], dtype=np.int64)
_SEPARATORS = str.maketrans("", "", " -.()")


def normalize_number(raw: str, country_code: str = "") -> str:
    """Return the digits OCC rates ``raw`` as, or raise ``ValueError`` naming what is wrong."""
    number = raw.translate(_SEPARATORS)
    if number.startswith("+"):
        number = number[1:]
    elif number.startswith("00"):
        number = number[2:]
    elif number.startswith("0") and country_code:
        number = country_code + number[1:]
    if not number.isascii() or not number.isdigit():
        bad = next((ch for ch in number if not ("0" <= ch <= "9")), "")
        if not number:
            raise ValueError(f"number {raw!r} has no digits")
        raise ValueError(f"number {raw!r} contains {bad!r}; only digits and a leading + are allowed")
    if len(number) > MAX_DIGITS:
        raise ValueError(f"number {raw!r} has {len(number)} digits; at most {MAX_DIGITS} are allowed")
    return number


def key_digits(key: int) -> str:
    """The digits a key was made from (its inverse; reasons name the number this way)."""
    digits = []
    for power in _POWERS.tolist():
        code, key = divmod(key, power)
        if code == 0:
            break
        digits.append(chr(code + 47))
    return "".join(digits)


def number_keys(digits: np.ndarray | list[str]) -> np.ndarray:
    """The keys (see the module docstring) of many normalised numbers (``""`` for none), as ``int64``.

    Reads the characters of a NumPy ``str`` or ``bytes`` array in place (as uint32 or uint8 codes), so no copy of the
    numbers is made; a list is converted to a ``str`` array first.
    """
    array = np.asarray(digits)
    if array.dtype.kind not in "US":
        array = array.astype(str)
    if array.dtype.kind == "U":
        width = array.dtype.itemsize // 4
        codes = array.view(np.uint32).reshape(len(array), width)
    else:
        width = array.dtype.itemsize
        codes = array.view(np.uint8).reshape(len(array), width)
    if width == 0:
        return np.zeros(len(array), dtype=np.int64)
    width = min(width, MAX_DIGITS)  # normalised numbers have at most MAX_DIGITS digits
    # '0' (code 48) must become 1 and the zero padding of short strings 0.
    return np.maximum(codes[:, :width].astype(np.int64) - 47, 0) @ _POWERS[:width]
