"""JavaScript regular expressions (ECMAScript with Annex B, no ``u`` flag) rewritten for RE2.

Message schemas take a ``pattern`` in JavaScript's syntax and meaning (SPEC §4) but match
with RE2, which stays linear in the text. ``translate`` reads the JavaScript source token by
token and writes an RE2 pattern that means the same, spelled out so that no RE2 syntax leaks
through: characters become ``\\x{..}`` escapes, every class becomes explicit code-point
ranges (``.``, ``\\s``, ``\\w``, ``\\d`` as JavaScript defines them), groups become
non-capturing, and ``^``/``$`` become ``\\A``/``\\z``.

Read as JavaScript reads them without ``u``: identity escapes (``\\z`` is "z", ``\\Q`` is
"Q", ``\\u{41}`` is "u" 41 times), legacy octal escapes (``\\1`` when there is no group 1;
``\\8`` is "8"), ``\\cX``, ``[\\b]`` (backspace), a ``{`` or ``]`` that is no syntax,
``[]`` (nothing), ``[^]`` (anything), ``[[:alpha:]]`` (a class of ``[:alph`` then "]").

The ``i`` flag is emulated rather than left to RE2, whose Unicode case folding matches more:
a character matches every character with the same Canonicalize value, its upper case when
that is one BMP character and does not take a non-ASCII character to ASCII (so ``/s/i``
does not match U+017F, long s, nor ``/k/i`` U+212A, the Kelvin sign). The tables come
from Python's ``str.upper``, so from Python's Unicode version (14.0 in Python 3.11; node
20 may know newer letters).

Refused with ``ValueError``: backreferences and lookaround, which RE2 cannot match in linear
time; everything JavaScript refuses; counted repetitions past ``MAX_REPEAT`` (RE2's limit,
also on counts nested in one another, multiplied); groups nested deeper than
``MAX_NESTING``; lone surrogates; ``\\p{..}``/``\\P{..}``, which without ``u`` mean the
letters "p{..}", never what their writer meant (use ``p\\{`` for those letters). RE2
then refuses what outgrows its memory budget: JavaScript's ``.`` and ``\\S`` compile to
twice and four times the program of RE2's own, so in 256 KiB ``.{660}`` and ``\\S{340}``
fit but ``.{700}`` does not.

Known differences that remain:

- JavaScript without ``u`` matches UTF-16 code units, Python strings and RE2 code points: a
  character outside the BMP is one ``.`` here and two there, a quantifier after it repeats
  all of it, and a class holding one matches it whole (in JavaScript, either half).
- With ``m``, JavaScript's lines end at \\n, \\r, U+2028 and U+2029, RE2's at \\n only, and
  RE2 has no lookbehind. A ``^`` that starts the match or follows a one-character atom, and
  a ``$`` that ends the match or comes before one, are exact; elsewhere they see \\n only.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache, lru_cache

MAX_REPEAT = 1000  # RE2's bound on {n,m}, and on nested bounds multiplied
MAX_NESTING = 100  # groups in groups; keeps the recursive parse far from Python's limit

Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, not adjacent

_TOP = 0x10FFFF
_EVERYTHING: Ranges = ((0, _TOP),)
_LINE_ENDS: Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_SPACES: Ranges = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
)
_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_DIGIT: Ranges = ((0x30, 0x39),)

_QUANTIFIER = re.compile(r"[*+?]|\{([0-9]+)(,([0-9]*))?\}")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_DIGITS = re.compile(r"[0-9]+")
_NAME_ESCAPE = re.compile(r"\\u(?:([0-9A-Fa-f]{4})|\{([0-9A-Fa-f]+)\})")
_CONTROL_ESCAPES = {"f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}


def _complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    start = 0
    for low, high in ranges:
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= _TOP:
        out.append((start, _TOP))
    return tuple(out)


_CLASS_ESCAPES: dict[str, Ranges] = {
    "d": _DIGIT,
    "D": _complement(_DIGIT),
    "s": _SPACES,
    "S": _complement(_SPACES),
    "w": _WORD,
    "W": _complement(_WORD),
}
_NOT_LINE_END = _complement(_LINE_ENDS)


def _normalize(parts: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for low, high in sorted(parts):
        if out and low <= out[-1][1] + 1:
            if high > out[-1][1]:
                out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return tuple(out)


def _intersect(ranges: Ranges, other: Ranges) -> Ranges:
    out = []
    for low, high in ranges:
        for other_low, other_high in other:
            if max(low, other_low) <= min(high, other_high):
                out.append((max(low, other_low), min(high, other_high)))
    return _normalize(out)


def _canonicalize(point: int) -> int:
    """JavaScript's Canonicalize without ``u`` (ECMA-262 22.2.2.7.3)."""
    upper = chr(point).upper()
    if len(upper) != 1 or ord(upper) > 0xFFFF or (point >= 128 and ord(upper) < 128):
        return point
    return ord(upper)


_Run = tuple[int, int, int, int, int]  # start, end, delta, span start, span end


@cache
def _case_partners() -> dict[int, Ranges]:
    """Each BMP character that matches others under ``i``: all it matches. Built once."""
    groups: dict[int, list[int]] = {}
    for point in range(0x10000):
        if not 0xD800 <= point <= 0xDFFF:
            groups.setdefault(_canonicalize(point), []).append(point)
    return {
        point: _normalize([(member, member) for member in group])
        for group in groups.values()
        if len(group) > 1
        for point in group
    }


@cache
def _case_runs() -> tuple[list[int], list[list[_Run]]]:
    """Which BMP characters match which others under ``i``, built once.

    Characters match when their Canonicalize values are equal. Every such (from, to) pair
    lies in one of some 350 runs ``(start, end, delta)``: each character of start..end
    matches itself plus delta, or, when delta is 0, start..end is side-by-side pairs
    (Ā ā Ă ă ...). A run's span covers its characters and their partners. Returns cut
    points and, for each piece between two, the runs whose span covers it: a range of a
    class only gains characters from runs whose span crosses one of its ends.
    """
    partners = _case_partners()
    edges = {
        (a, b) for a, group in partners.items() for low, high in group for b in range(low, high + 1)
    }
    edges -= {(a, a) for a in partners}
    paired = sorted(a for a, b in edges if b == a + 1 and (b, a) in edges)
    for a in paired:
        edges -= {(a, a + 1), (a + 1, a)}
    runs: list[list[int]] = []
    for a in paired:
        if runs and runs[-1][1] == a - 1:
            runs[-1][1] = a + 1
        else:
            runs.append([a, a + 1, 0])
    for delta, a in sorted((b - a, a) for a, b in edges):
        if runs and runs[-1][2] == delta and runs[-1][1] == a - 1:
            runs[-1][1] = a
        else:
            runs.append([a, a, delta])
    spans = [(a, b, d, min(a, a + d), max(b, b + d)) for a, b, d in runs]
    cuts = sorted({run[3] for run in spans} | {run[4] + 1 for run in spans})
    covering: list[list[_Run]] = [[] for _ in cuts]
    for run in spans:
        for index in range(bisect_left(cuts, run[3]), bisect_left(cuts, run[4] + 1)):
            covering[index].append(run)
    return cuts, covering


def _crossing(point: int) -> list[_Run]:
    """The runs whose span holds both ``point - 1`` and ``point``."""
    cuts, covering = _case_runs()
    index = bisect_right(cuts, point - 1) - 1
    return [run for run in covering[index] if run[4] >= point] if index >= 0 else []


@lru_cache(maxsize=1024)
def _fold(ranges: Ranges) -> Ranges:
    """Every character that matches a member of ``ranges`` under the ``i`` flag."""
    extra = []
    for low, high in ranges:
        for start, end, delta, _, _ in {*_crossing(low), *_crossing(high + 1)}:
            first, last = max(low, start), min(high, end)
            if first > last:
                continue
            if delta:
                extra.append((first + delta, last + delta))
            else:  # whole pairs
                extra.append((first - (first - start) % 2, last + 1 - (last - start) % 2))
    return _normalize([*ranges, *extra]) if extra else ranges


# The parsed pattern: only what RE2 needs to know.
@dataclass(frozen=True, slots=True)
class _Set:
    """Matches one character out of ``ranges``."""

    ranges: Ranges


@dataclass(frozen=True, slots=True)
class _Assertion:
    kind: str  # "^", "$", "b", "B"


@dataclass(frozen=True, slots=True)
class _Group:
    alternatives: tuple[tuple[_Node, ...], ...]


@dataclass(frozen=True, slots=True)
class _Repeat:
    node: _Node
    low: int
    high: int | None
    lazy: bool


_Node = _Set | _Assertion | _Group | _Repeat


def translate(source: str, flags: str = "") -> str:
    """The RE2 pattern (ASCII text) meaning what ``new RegExp(source, flags)`` means to
    ``test``; ``flags`` from "ims". ``ValueError`` with a short reason when refused."""
    if not set(flags) <= set("ims") or len(set(flags)) != len(flags):
        raise ValueError(f"flags {flags!r} are not some of i, m, s, each at most once")
    parser = _Parser(source, ignore_case="i" in flags, dot_all="s" in flags)
    tree = parser.parse()
    out = _Writer("m" in flags).alternatives(tree, lead=True, trail=True, room=MAX_REPEAT)
    if parser.not_boundary:
        # RE2 searches UTF-8 bytes and may try an empty match inside a character, where
        # \B holds (both bytes are non-word); starting from \A whole characters at a time
        # keeps every position a real one.
        out = f"\\A[\\x{{0}}-\\x{{10FFFF}}]*?(?:{out})"
    return out


def _count_groups(source: str) -> tuple[int, bool]:
    """Capturing groups in the whole pattern, and whether any is named: ``\\2`` refers to a
    group that may come later, and named groups make ``\\k`` syntax (as in V8's pre-scan)."""
    count, named, in_class, index = 0, False, False, 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(" and not source.startswith("?", index + 1):
            count += 1
        elif char == "(" and source[index + 1 : index + 3] == "?<":
            capturing = source[index + 3 : index + 4] not in ("=", "!")  # else a lookbehind
            count, named = count + capturing, named or capturing
        index += 1
    return count, named


class _Parser:
    def __init__(self, source: str, *, ignore_case: bool, dot_all: bool) -> None:
        self.source = source
        self.pos = 0
        self.ignore_case = ignore_case
        self.dot = _EVERYTHING if dot_all else _NOT_LINE_END
        self.groups, self.named = _count_groups(source)
        self.names: set[str] = set()
        self.depth = 0
        self.not_boundary = False  # saw \B

    def error(self, reason: str, pos: int | None = None) -> ValueError:
        return ValueError(f"{reason} at offset {self.pos if pos is None else pos}")

    def peek(self, ahead: int = 0) -> str:
        return self.source[self.pos + ahead : self.pos + ahead + 1]

    def parse(self) -> tuple[tuple[_Node, ...], ...]:
        tree = self.disjunction()
        if self.pos < len(self.source):  # only a ")" stops a disjunction early
            raise self.error("unmatched ')'")
        return tree

    def disjunction(self) -> tuple[tuple[_Node, ...], ...]:
        alternatives = []
        while True:
            terms = []
            while self.peek() not in ("", "|", ")"):
                terms.append(self.term())
            alternatives.append(tuple(terms))
            if self.peek() != "|":
                return tuple(alternatives)
            self.pos += 1

    def term(self) -> _Node:
        char, start = self.peek(), self.pos
        if char in ("^", "$") or self.source.startswith(("\\b", "\\B"), start):
            self.pos += 1 if char in ("^", "$") else 2
            if _QUANTIFIER.match(self.source, self.pos):  # JavaScript cannot repeat these
                raise self.error("nothing to repeat")
            kind = self.source[self.pos - 1]
            self.not_boundary |= kind == "B"
            return _Assertion(kind)
        atom = self.atom()
        quantifier = _QUANTIFIER.match(self.source, self.pos)
        if quantifier is None:
            return atom
        self.pos = quantifier.end()
        lazy = self.peek() == "?"
        self.pos += lazy
        low, high = _bounds(quantifier)
        if high is not None and high < low:
            raise self.error("numbers out of order in {} quantifier", start)
        if max(low, high or 0) > MAX_REPEAT:
            raise self.error(f"a repetition count above {MAX_REPEAT} is not supported", start)
        return _Repeat(atom, low, high, lazy)

    def atom(self) -> _Node:
        char = self.peek()
        if char in ("*", "+", "?") or (char == "{" and _QUANTIFIER.match(self.source, self.pos)):
            raise self.error("nothing to repeat")
        if char == "(":
            return self.group()
        if char == "[":
            return self.char_class()
        if char == "\\":
            return self.atom_escape()
        self.pos += 1
        if char == ".":
            return _Set(self.dot)
        return self.literal(self.checked(ord(char)))

    def literal(self, point: int) -> _Set:
        if self.ignore_case and point in _case_partners():
            return _Set(_case_partners()[point])
        return _Set(((point, point),))

    def checked(self, point: int) -> int:
        if 0xD800 <= point <= 0xDFFF:
            raise self.error("lone surrogates (U+D800 to U+DFFF) are not supported", self.pos - 1)
        return point

    def group(self) -> _Group:
        start = self.pos
        self.pos += 1
        if self.peek() == "?":
            self.group_kind()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"groups nest deeper than {MAX_NESTING} levels")
        alternatives = self.disjunction()
        self.depth -= 1
        if self.peek() != ")":
            raise self.error("unterminated group", start)
        self.pos += 1
        return _Group(alternatives)

    def group_kind(self) -> None:
        rest = self.source[self.pos : self.pos + 4]
        if rest.startswith(("?=", "?!", "?<=", "?<!")):
            raise self.error("lookaround ((?=, (?!, (?<=, (?<!) is not supported", self.pos - 1)
        if rest.startswith("?:"):
            self.pos += 2
        elif rest.startswith("?<"):
            self.group_name()
        else:
            raise self.error("invalid group", self.pos - 1)

    def group_name(self) -> None:
        end = self.source.find(">", self.pos)
        name = _NAME_ESCAPE.sub(_name_escape, self.source[self.pos + 2 : max(end, 0)])
        # RegExpIdentifierName: an identifier where "$" may be any character, and the
        # joiners any but the first.
        plain = name[:1].replace("$", "_") + name[1:].translate(_NAME_EXTRAS)
        if end < 0 or not plain.isidentifier():
            raise self.error("invalid capture group name")
        if name in self.names:
            raise self.error("duplicate capture group name")
        self.names.add(name)
        self.pos = end + 1

    def atom_escape(self) -> _Node:
        start = self.pos
        self.pos += 1
        char = self.peek()
        if char in _CLASS_ESCAPES:
            self.pos += 1
            return _Set(_fold(_CLASS_ESCAPES[char]) if self.ignore_case else _CLASS_ESCAPES[char])
        if char and char in "123456789":
            digits = _DIGITS.match(self.source, self.pos)
            if digits and int(digits[0]) <= self.groups:
                raise self.error("backreferences are not supported", start)
        elif char == "k" and self.named:
            if self.peek(1) == "<":
                raise self.error("backreferences are not supported", start)
            raise self.error("invalid named reference", start)
        elif char in ("p", "P") and self.peek(1) == "{":
            raise self.error(
                f"\\{char}{{..}} is not supported: without the u flag it means {char}{{..}}", start
            )
        return self.literal(self.character_escape(in_class=False))

    def character_escape(self, *, in_class: bool) -> int:
        """The character of an escape (CharacterEscape, Annex B), ``pos`` after the "\\"."""
        char = self.peek()
        if not char:
            raise self.error("\\ at end of pattern")
        if char == "c":
            return self.control(in_class=in_class)
        if char in "01234567":
            return self.octal()
        self.pos += 1
        if char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        if char == "x" and (hex2 := _HEX2.match(self.source, self.pos)):
            self.pos = hex2.end()
            return int(hex2[0], 16)
        if char == "u" and _HEX4.match(self.source, self.pos):
            return self.unicode_escape(in_class=in_class)
        return self.checked(ord(char))  # an identity escape: "\z" is "z"

    def control(self, *, in_class: bool) -> int:
        letter = self.peek(1)
        valid = letter.isascii() and (letter.isalpha() or (in_class and letter in "0123456789_"))
        if not letter or not valid:
            return 0x5C  # a backslash; the "c" is read next as itself
        self.pos += 2
        return ord(letter) % 32

    def octal(self) -> int:
        # LegacyOctalEscapeSequence: up to three digits, value at most 0o377.
        value = int(self.source[self.pos])
        self.pos += 1
        for _ in range(2 if value < 4 else 1):
            digit = self.peek()
            if digit not in tuple("01234567"):
                break
            value, self.pos = value * 8 + int(digit), self.pos + 1
        return value

    def unicode_escape(self, *, in_class: bool) -> int:
        start = self.pos - 2
        unit = int(self.source[self.pos : self.pos + 4], 16)
        self.pos += 4
        tail = self.source[self.pos : self.pos + 6]
        if (
            0xD800 <= unit <= 0xDBFF
            and not in_class
            and tail.startswith("\\u")
            and _HEX4.fullmatch(tail[2:])
            and 0xDC00 <= int(tail[2:], 16) <= 0xDFFF
        ):  # a surrogate pair is the one character it encodes
            self.pos += 6
            return 0x10000 + ((unit - 0xD800) << 10) + int(tail[2:], 16) - 0xDC00
        if 0xD800 <= unit <= 0xDFFF:
            raise self.error("lone surrogates (U+D800 to U+DFFF) are not supported", start)
        return unit

    def char_class(self) -> _Set:
        start = self.pos
        self.pos += 1
        negate = self.peek() == "^"
        self.pos += negate
        parts: list[tuple[int, int]] = []
        while self.peek() != "]":
            if not self.peek():
                raise self.error("unterminated character class", start)
            first = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("", "]"):
                self.pos += 1
                second = self.class_atom()
                if isinstance(first, int) and isinstance(second, int):
                    if first > second:
                        raise self.error("range out of order in character class", start)
                    parts.append((first, second))
                    continue
                parts.append((0x2D, 0x2D))  # Annex B: [\d-z] is \d, "-" and "z"
                parts.extend(_as_ranges(second))
            parts.extend(_as_ranges(first))
        self.pos += 1
        ranges = _normalize(parts)
        if self.ignore_case:
            ranges = _fold(ranges)
        return _Set(_complement(ranges) if negate else ranges)

    def class_atom(self) -> int | Ranges:
        char = self.peek()
        self.pos += 1
        if char != "\\":
            return self.checked(ord(char))
        char = self.peek()
        if char == "b":
            self.pos += 1
            return 0x08
        if char in _CLASS_ESCAPES:
            self.pos += 1
            return _CLASS_ESCAPES[char]
        if char == "k" and self.named:
            raise self.error("invalid escape", self.pos - 1)
        return self.character_escape(in_class=True)


_NAME_EXTRAS = str.maketrans({"$": "_", "\u200c": "_", "\u200d": "_"})


def _name_escape(escape: re.Match[str]) -> str:
    point = int(escape[1] or escape[2], 16)
    return chr(point) if point <= _TOP else "\\"  # past Unicode: no identifier


def _as_ranges(atom: int | Ranges) -> Ranges:
    return ((atom, atom),) if isinstance(atom, int) else atom


def _bounds(quantifier: re.Match[str]) -> tuple[int, int | None]:
    text = quantifier[0]
    if text in ("*", "+", "?"):
        return (0 if text != "+" else 1), (1 if text == "?" else None)
    low = int(quantifier[1])
    if quantifier[2] is None:
        return low, low
    return low, int(quantifier[3]) if quantifier[3] else None


_CARET, _DOLLAR = _Assertion("^"), _Assertion("$")
_STARTS_LINE = r"(?:\A|[\x{A}\x{D}\x{2028}-\x{2029}])"
_ENDS_LINE = r"(?:\z|[\x{A}\x{D}\x{2028}-\x{2029}])"


class _Writer:
    """Writes the parsed pattern as RE2 text, settling ``^`` and ``$`` by position."""

    def __init__(self, multiline: bool) -> None:
        self.multiline = multiline

    def alternatives(
        self, tree: tuple[tuple[_Node, ...], ...], *, lead: bool, trail: bool, room: int
    ) -> str:
        return "|".join(self.sequence(terms, lead, trail, room) for terms in tree)

    def sequence(self, terms: tuple[_Node, ...], lead: bool, trail: bool, room: int) -> str:
        if not self.multiline:  # \A and \z need no help
            return "".join(self.node(term, False, False, room) for term in terms)
        terms = _pin_line_anchors(terms)
        # Only a test is wanted, so the line end before the match's start or after its end
        # may be consumed; the zero-width terms around it see the same position.
        head = _zero_width(terms) if lead else 0
        tail = _zero_width(terms[::-1]) if trail else 0
        last = len(terms) - 1
        body = "".join(
            self.node(term, lead and i == 0, trail and i == last, room)
            for i, term in enumerate(terms)
            if not (i < head and term == _CARET) and not (i > last - tail and term == _DOLLAR)
        )
        starts = _CARET in terms[:head]
        ends = _DOLLAR in terms[len(terms) - tail :]
        return (_STARTS_LINE if starts else "") + body + (_ENDS_LINE if ends else "")

    def node(self, node: _Node, lead: bool, trail: bool, room: int) -> str:
        if isinstance(node, _Set):
            return _set_text(node.ranges)
        if isinstance(node, _Group):
            return f"(?:{self.alternatives(node.alternatives, lead=lead, trail=trail, room=room)})"
        if isinstance(node, _Repeat):
            return self.repeat(node, room)
        return self.assertion(node.kind)

    def repeat(self, node: _Repeat, room: int) -> str:
        low, high = node.low, node.high
        count = high if high is not None else low
        if count > 1:
            if count > room:  # RE2 multiplies nested counts and refuses past its bound
                raise ValueError(f"nested repetition counts multiply past {MAX_REPEAT}")
            room //= count
        inner = self.node(node.node, False, False, room)
        if (low, high) in _SHORT_QUANTIFIERS:
            quantifier = _SHORT_QUANTIFIERS[low, high]
        elif high == low:
            quantifier = f"{{{low}}}"
        else:
            quantifier = f"{{{low},{'' if high is None else high}}}"
        return inner + quantifier + ("?" if node.lazy else "")

    def assertion(self, kind: str) -> str:
        if kind in ("b", "B"):
            return "\\" + kind
        if not self.multiline:
            return "\\A" if kind == "^" else "\\z"
        return "(?m:^)" if kind == "^" else "(?m:$)"  # RE2's lines end at \n only


_SHORT_QUANTIFIERS = {(0, None): "*", (1, None): "+", (0, 1): "?"}


def _zero_width(terms: tuple[_Node, ...]) -> int:
    """How many terms at the start are assertions."""
    count = 0
    while count < len(terms) and isinstance(terms[count], _Assertion):
        count += 1
    return count


def _pin_line_anchors(terms: tuple[_Node, ...]) -> tuple[_Node, ...]:
    """With ``m``, ``x^`` and ``$x`` for one character ``x`` hold exactly when that character
    ends a line: fold the anchor into it."""
    out: list[_Node] = []
    for term in terms:
        if term == _CARET and out and isinstance(out[-1], _Set):
            out[-1] = _Set(_intersect(out[-1].ranges, _LINE_ENDS))
        elif isinstance(term, _Set) and out and out[-1] == _DOLLAR:
            out[-1] = _Set(_intersect(term.ranges, _LINE_ENDS))
        else:
            out.append(term)
    return tuple(out)


_ASCII_PAIRS = {((upper, upper), (upper + 32, upper + 32)) for upper in range(0x41, 0x5B)}


def _char_text(point: int) -> str:
    return chr(point) if point < 0x80 and chr(point).isalnum() else f"\\x{{{point:X}}}"


def _set_text(ranges: Ranges) -> str:
    if not ranges:
        return r"[^\x{0}-\x{10FFFF}]"  # RE2 has no "[]"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char_text(ranges[0][0])
    if ranges in _ASCII_PAIRS:
        # RE2 reads a class of just "K" and "k" as "k" folded, and an alternation of such
        # reads grows into a class of Unicode folds with the Kelvin sign in it.
        return f"(?:{chr(ranges[0][0])}|{chr(ranges[1][0])})"
    inner = "".join(
        _char_text(low) if low == high else f"{_char_text(low)}-{_char_text(high)}"
        for low, high in ranges
    )
    return f"[{inner}]"
