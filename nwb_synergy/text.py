"""Names from files made safe to print and to use in file names.

Series, muscle and table names come from the files we read, and a file can hold anything:
terminal escape sequences (``"\\x1b[2J"`` clears the screen, ``"\\x1b]8;;...\\x07"`` writes a
link), carriage returns that overwrite the line, right-to-left overrides that reverse what
follows. :func:`printable` escapes every such character before a name reaches a terminal or a
log; :func:`safe_filename` turns a name into a file name made only of ``A-Z a-z 0-9 . _ -``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["printable", "safe_filename"]

# control (Cc), format (Cf: bidi overrides, zero-width characters), surrogate (Cs: undecodable
# bytes of a file name), line and paragraph separators (Zl, Zp)
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NOT_SAFE_IN_FILENAMES = re.compile(r"[^A-Za-z0-9._-]+")
# names Windows reserves whatever the extension (CON.png is the console)
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)", re.IGNORECASE)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(name: object) -> str:
    """``name`` as text with every control or formatting character escaped.

    Parameters
    ----------
    name
        Anything; converted with ``str``.

    Returns
    -------
    str
        The same text where each control character (C0, DEL, C1: escape, carriage return,
        newline, tab, bell ...), format character (right-to-left override, zero-width space ...),
        surrogate and line or paragraph separator is replaced by its escape (``\\x1b``,
        ``\\u202e``). Everything else, accented and non-Latin letters included, is unchanged.

    Examples
    --------
    >>> printable("EMG\\x1b[2J")
    'EMG\\\\x1b[2J'
    >>> printable("Müller")
    'Müller'
    """
    text = str(name)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)


def safe_filename(name: object, *, max_length: int = 80) -> str:
    """A file name (without folder) made from ``name``, safe on every system and shell.

    Parameters
    ----------
    name
        Anything; converted with ``str``.
    max_length
        At most this many characters are kept from the name (a suffix of 9 may follow).

    Returns
    -------
    str
        ``name`` itself when it is already made only of ASCII letters, digits, ``.``, ``_``
        and ``-``, does not start with ``.``, ``_`` or ``-`` (hidden files, command options),
        is not a name Windows reserves (``CON``, ``NUL``, ``COM1`` ...) and is not too long.
        Otherwise every run of other characters becomes ``_``, leading ``.``, ``_`` and ``-``
        are dropped, and ``-`` plus 8 hexadecimal digits of a hash of the original name are
        appended, so that two different names never give the same file name (``"EMG 1"`` and
        ``"EMG/1"`` both sanitise to ``EMG_1`` but get different suffixes).

    Examples
    --------
    >>> safe_filename("sta_unit12")
    'sta_unit12'
    >>> safe_filename("../../etc/passwd")[:11]
    'etc_passwd-'
    >>> safe_filename("EMG 1") != safe_filename("EMG/1")
    True
    """
    text = str(name)
    safe = _NOT_SAFE_IN_FILENAMES.sub("_", text).lstrip("._-").rstrip(".")
    if _RESERVED.match(safe):
        safe = "_" + safe
    safe = safe[:max_length]
    if safe and safe == text:
        return safe
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe or 'unnamed'}-{digest}"
