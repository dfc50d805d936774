"""`regex` for the grader sandbox: the `regex` package is native code with no WASI build, so this
stand-in offers its `re`-compatible API over the standard library's `re`.

nltk compiles its tokenizers' patterns with `regex` (`nltk.tokenize.casual`); those patterns are
`re`-compatible. A pattern that only `regex` understands (`\p{L}`, `(?V1)`, fuzzy matching,
named lists) raises `regex.error` (a `re.error`) saying so. The match methods accept and ignore
`regex`'s `timeout=`, `concurrent=`, `partial=` and `overlapped=`: the sandbox's wall-time
limit bounds every call.
"""
import re as _re

__version__ = "stand-in over re"

A = ASCII = _re.A
I = IGNORECASE = _re.I
L = LOCALE = _re.L
M = MULTILINE = _re.M
S = DOTALL = _re.S
U = UNICODE = _re.U
X = VERBOSE = _re.X
V0 = VERSION0 = 0
DEFAULT_VERSION = V0

_UNSUPPORTED = "(the grader sandbox's `regex` is a stand-in over the standard library's `re`: syntax only `regex` has, such as \\p{..}, (?V1) or fuzzy matching, is not supported; see docs/python-graders.md)"


class error(_re.error):
    """A pattern `re` refuses."""


_MATCH_KWARGS = ("timeout", "concurrent", "partial", "overlapped")


def _drop(kwargs):
    for key in _MATCH_KWARGS:
        kwargs.pop(key, None)
    return kwargs


class Pattern:
    """A compiled pattern; the match methods accept (and ignore) `regex`'s `timeout=`,
    `concurrent=`: the sandbox's wall-time limit bounds every call."""

    __slots__ = ("_rx",)

    def __init__(self, rx):
        self._rx = rx

    def search(self, string, *args, **kwargs):
        return self._rx.search(string, *args, **_drop(kwargs))

    def match(self, string, *args, **kwargs):
        return self._rx.match(string, *args, **_drop(kwargs))

    def fullmatch(self, string, *args, **kwargs):
        return self._rx.fullmatch(string, *args, **_drop(kwargs))

    def findall(self, string, *args, **kwargs):
        return self._rx.findall(string, *args, **_drop(kwargs))

    def finditer(self, string, *args, **kwargs):
        return self._rx.finditer(string, *args, **_drop(kwargs))

    def split(self, string, *args, **kwargs):
        return self._rx.split(string, *args, **_drop(kwargs))

    def sub(self, repl, string, *args, **kwargs):
        return self._rx.sub(repl, string, *args, **_drop(kwargs))

    def subn(self, repl, string, *args, **kwargs):
        return self._rx.subn(repl, string, *args, **_drop(kwargs))

    @property
    def pattern(self):
        return self._rx.pattern

    @property
    def flags(self):
        return self._rx.flags

    @property
    def groups(self):
        return self._rx.groups

    @property
    def groupindex(self):
        return self._rx.groupindex

    def __eq__(self, other):
        return isinstance(other, Pattern) and self._rx == other._rx

    def __hash__(self):
        return hash(self._rx)

    def __repr__(self):
        return "regex.Regex(%r, flags=%r)" % (self._rx.pattern, self._rx.flags)


def compile(pattern, flags=0, ignore_unused=False, **kwargs):
    if isinstance(pattern, Pattern):
        return pattern
    if kwargs:
        raise error("named lists (%s) %s" % (", ".join(sorted(kwargs)), _UNSUPPORTED))
    try:
        return Pattern(_re.compile(pattern, flags))
    except _re.error as e:
        raise error("%s %s" % (e, _UNSUPPORTED)) from None


def search(pattern, string, flags=0, pos=None, endpos=None, **kwargs):
    return compile(pattern, flags).search(string, *_span(pos, endpos, string), **kwargs)


def match(pattern, string, flags=0, pos=None, endpos=None, **kwargs):
    return compile(pattern, flags).match(string, *_span(pos, endpos, string), **kwargs)


def fullmatch(pattern, string, flags=0, pos=None, endpos=None, **kwargs):
    return compile(pattern, flags).fullmatch(string, *_span(pos, endpos, string), **kwargs)


def findall(pattern, string, flags=0, pos=None, endpos=None, **kwargs):
    return compile(pattern, flags).findall(string, *_span(pos, endpos, string), **kwargs)


def finditer(pattern, string, flags=0, pos=None, endpos=None, **kwargs):
    return compile(pattern, flags).finditer(string, *_span(pos, endpos, string), **kwargs)


def split(pattern, string, maxsplit=0, flags=0, **kwargs):
    return compile(pattern, flags).split(string, maxsplit, **kwargs)


def sub(pattern, repl, string, count=0, flags=0, **kwargs):
    return compile(pattern, flags).sub(repl, string, count, **kwargs)


def subn(pattern, repl, string, count=0, flags=0, **kwargs):
    return compile(pattern, flags).subn(repl, string, count, **kwargs)


def _span(pos, endpos, string):
    return (0 if pos is None else pos, len(string) if endpos is None else endpos)


escape = _re.escape
purge = _re.purge
Match = _re.Match
Regex = Pattern
