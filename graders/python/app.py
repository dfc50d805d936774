"""Flywheel's `python` grader: runs OpenAI `python` grader sources inside this component.

The component is CPython compiled to WebAssembly by componentize-py; it exports
`flywheel:grader/grading@0.1.0` (world `grader`, `wit/grader.wit`). The host gives it the same
sandbox and limits as every grader: no files, no network, no environment, a wall-time deadline,
a memory cap. This module only turns the OpenAI definition into calls of the user's
`grade(sample, item)` and its outcome into the contract's types.

Semantics (docs/python-graders.md):
- `validate-config` checks the OpenAI JSON, refuses a source over 256 KiB, compiles it (a
  SyntaxError names its line) and checks that a top-level `grade` takes exactly two arguments,
  without running the source.
- `grade` runs the source in a fresh namespace and calls `grade(sample, item)` with the parsed
  JSON. An exception, or a result that is not a finite int/float, gives score 0, `passed`
  false, label `error` and the error (with the line and the tail of what was printed) in
  `reasoning`, as OpenAI scores an errored sample 0.
- `grade-batch` compiles and runs the source once for the whole batch.
- Whatever the source prints goes to a bounded buffer (the last 4 KiB are kept and shown with
  an error); it never reaches the host.
"""

import ast
import builtins
import gc
import io
import json
import math
import os
import sys

# Imported here so the interpreter snapshot built by componentize-py already holds them: a
# grader that imports them pays a dict lookup, not a module load. These are the modules OpenAI
# grader sources commonly use.
import array  # noqa: F401
import base64  # noqa: F401
import bisect  # noqa: F401
import cmath  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import csv  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import difflib  # noqa: F401
import fnmatch  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import html  # noqa: F401
import itertools  # noqa: F401
import logging  # noqa: F401  (reads the clock at import, which traps at grading time)
import sysconfig  # noqa: F401  (these two read files at import: done here, while there are files)
import zoneinfo  # noqa: F401
import operator  # noqa: F401
import pprint  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import shlex  # noqa: F401
import string  # noqa: F401
import struct  # noqa: F401
import textwrap  # noqa: F401
import typing  # noqa: F401
import unicodedata  # noqa: F401

import library
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import types

#: The largest `source` accepted, in bytes of UTF-8 (OpenAI documents 256 kB).
MAX_SOURCE_BYTES = 256 * 1024
#: Bytes of printed output kept (the tail) per call.
MAX_PRINTED_BYTES = 4 * 1024
#: Longest error text returned.
MAX_ERROR_CHARS = 4 * 1024
#: Fields of OpenAI's python grader object.
KNOWN_FIELDS = {"type", "name", "source", "image_tag", "pass_threshold"}
#: Compiled sources kept per instance (an instance lives for one call or one batch).
MAX_CACHED_SOURCES = 8

VERSION = "flywheel-python-grader 0.1.0 (componentize-py 0.25.1, CPython %d.%d.%d)" % sys.version_info[:3]


class ConfigError(Exception):
    """The config is not a valid OpenAI python grader; the text names the field."""


class TailBuffer(io.TextIOBase):
    """A write-only text stream that keeps the last `limit` characters written."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.parts = []
        self.size = 0
        self.dropped = 0

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        n = len(text)
        if n >= self.limit:
            self.dropped += self.size + n - self.limit
            self.parts = [text[n - self.limit:]]
            self.size = self.limit
            return n
        self.parts.append(text)
        self.size += n
        if self.size > 2 * self.limit:
            joined = "".join(self.parts)
            self.dropped += len(joined) - self.limit
            self.parts = [joined[-self.limit:]]
            self.size = self.limit
        return n

    def reset(self):
        self.parts = []
        self.size = 0
        self.dropped = 0

    def tail(self):
        joined = "".join(self.parts)
        extra = max(0, len(joined) - self.limit)
        text = joined[extra:]
        if self.dropped + extra:
            return "[%d earlier characters dropped]\n%s" % (self.dropped + extra, text)
        return text


class Program:
    """A parsed config: the compiled source and the threshold."""

    def __init__(self, code, pass_threshold):
        self.code = code
        self.pass_threshold = pass_threshold
        self.checked = False


_programs = {}

#: What the grader prints: `sys.stdout` and `sys.stderr` from the snapshot on.
PRINTED = TailBuffer(MAX_PRINTED_BYTES)


def parse_config(config, check_signature):
    """Checks an OpenAI python grader definition and compiles its source.

    `check_signature` builds the AST to check `grade`'s arguments: `validate-config` does,
    grading does not (building the AST as Python objects costs about as much as a fresh
    instance; a wrong `grade` then fails when called, with score 0 and the TypeError)."""
    try:
        value = json.loads(config)
    except ValueError as e:
        raise ConfigError("config is not valid JSON: %s" % e)
    if not isinstance(value, dict):
        raise ConfigError("config must be a JSON object")
    unknown = sorted(set(value) - KNOWN_FIELDS)
    if unknown:
        raise ConfigError("%s: unknown field (known: %s)" % (unknown[0], ", ".join(sorted(KNOWN_FIELDS))))
    kind = value.get("type", "python")
    if kind != "python":
        raise ConfigError("type: must be \"python\", not %s" % json.dumps(kind))
    for field in ("name", "image_tag"):
        if field in value and not isinstance(value[field], str):
            raise ConfigError("%s: must be a string" % field)
    threshold = value.get("pass_threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not math.isfinite(threshold)
    ):
        raise ConfigError("pass_threshold: must be a finite number")
    source = value.get("source")
    if not isinstance(source, str):
        raise ConfigError("source: missing or not a string")
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise ConfigError("source: %d bytes; the limit is %d bytes (256 KiB)" % (size, MAX_SOURCE_BYTES))
    try:
        if check_signature:
            tree = ast.parse(source, filename="<grader>")
            check_grade_signature(tree)
            code = compile(tree, "<grader>", "exec")
        else:
            code = compile(source, "<grader>", "exec")
    except SyntaxError as e:
        raise ConfigError("source: %s at line %s: %s" % (type(e).__name__, e.lineno, e.msg))
    except (ValueError, MemoryError, RecursionError) as e:
        raise ConfigError("source: cannot be parsed: %s" % e)
    return Program(code, threshold)


def check_grade_signature(tree):
    """The source must define, at top level, `grade` taking exactly two positional arguments."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "grade":
            found = node
    if found is None:
        raise ConfigError("source: defines no top-level function `grade(sample, item)`")
    if isinstance(found, ast.AsyncFunctionDef):
        raise ConfigError("source: `grade` must be a plain function, not async (line %d)" % found.lineno)
    args = found.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    required_kwonly = [a for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    takes_two = required <= 2 and (positional >= 2 or args.vararg is not None)
    if not takes_two or required_kwonly:
        raise ConfigError(
            "source: `grade` (line %d) must take exactly two arguments, (sample, item)" % found.lineno
        )


def program_for(config, check_signature=False):
    """The compiled program of a config, cached for the life of this instance."""
    program = _programs.get(config)
    if program is None or (check_signature and not program.checked):
        program = parse_config(config, check_signature)
        program.checked = check_signature
        if len(_programs) >= MAX_CACHED_SOURCES:
            _programs.clear()
        _programs[config] = program
    return program


def parse_json(text, what):
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError("%s is not valid JSON: %s" % (what, e))


def _refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


def parse_sample(text):
    """The sample as every Flywheel grader sees it (grader-sdk `Sample::parse`, which templates
    such as `{{sample.output_json.verdict}}` read): a bare JSON string is `{"output_text": s}`,
    and when `output_json` is absent and `output_text` is a JSON object or array,
    `output_json` is that value parsed, as OpenAI's runner fills it."""
    sample = parse_json(text, "sample")
    if isinstance(sample, str):
        sample = {"output_text": sample}
    elif not isinstance(sample, dict):
        raise ValueError("sample must be a JSON object, found %s" % json_kind(sample))
    if "output_json" not in sample and isinstance(sample.get("output_text"), str):
        try:
            # NaN and Infinity are not JSON for serde_json, so not for templates either.
            parsed = json.loads(sample["output_text"], parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (dict, list)):
            sample["output_json"] = parsed
    return sample


def json_kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def clip(text):
    if len(text) > MAX_ERROR_CHARS:
        return text[: MAX_ERROR_CHARS // 2] + "\n[…]\n" + text[-MAX_ERROR_CHARS // 2 :]
    return text


def describe_exception(error):
    """`Type: message (line N)`, the line being the deepest frame in the grader's source.

    Walks the traceback by hand: `traceback` would read source lines through `linecache`,
    which touches the (absent) filesystem.
    """
    line = None
    deepest = None
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == "<grader>":
            line = tb.tb_lineno
        elif filename.startswith(("<stdlib>/", "<packages>/")):
            deepest = "%s:%d" % (filename, tb.tb_lineno)
        tb = tb.tb_next
    name = getattr(type(error), "__name__", "exception")
    try:
        text = "%s: %s" % (name, error)
        if not isinstance(text, str):
            text = name
    except BaseException:  # noqa: B902 — a hostile __str__ may raise SystemExit too
        text = name
    if line is not None:
        text += " (line %d" % line
        # Where in a library module it was raised, when it was (the runner's own frames and
        # the grader's are not listed).
        text += "; raised in %s)" % deepest if deepest else ")"
    return text


def errored(message, printed):
    """The grade of a row whose grader raised or returned a non-number: OpenAI's score 0."""
    text = message
    tail = printed.tail()
    if tail:
        text += "\nprinted:\n" + tail
    return types.Grade(
        score=0.0,
        passed=False,
        label="error",
        reasoning=clip(valid_utf8(text)),
        metrics=[],
    )


def valid_utf8(text):
    """`text` with lone surrogates (which UTF-8 cannot carry to the host) written as `\\udcxx`."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def new_namespace():
    return {"__name__": "__grader__", "__builtins__": builtins}


class Session:
    """One program run per row: each row gets a fresh namespace, so module-level state of the
    source never carries from one row to the next. The builtins and `sys.stdout`/`sys.stderr`
    are put back after each row. Imported modules (including `sys`) are shared by the rows of
    one call, as re-importing them per row would cost milliseconds (docs/python-graders.md)."""

    def __init__(self, program):
        self.program = program
        self.namespace = None

    def run_row(self, sample_text, item_text):
        try:
            sample = parse_sample(sample_text)
            item = parse_json(item_text, "item")
        except ValueError as e:
            raise Err(types.GradeError_InvalidInput(valid_utf8(str(e))))
        try:
            return self.grade_row(sample, item)
        finally:
            restore_shared_state()

    def grade_row(self, sample, item):
        # stdout and stderr are this buffer for the life of the instance (see `seal`); it is
        # emptied per row so an error shows what that row printed.
        printed = PRINTED
        printed.reset()
        namespace = new_namespace()
        try:
            exec(self.program.code, namespace)
            if not callable(namespace.get("grade")):
                raise TypeError("the source's `grade` is not a function once run")
            self.namespace = namespace
        except BaseException as e:  # noqa: B902 — SystemExit, MemoryError too
            return errored("running the source failed: " + describe_exception(e), printed)
        try:
            result = self.namespace["grade"](sample, item)
        except BaseException as e:  # noqa: B902
            return errored("grade() raised " + describe_exception(e), printed)
        if not isinstance(result, (int, float)):
            return errored(
                "grade() returned %s, not a float" % type(result).__name__, printed
            )
        try:
            # The base types' own conversion: a subclass's __float__ (which may raise or return
            # a str) is never called.
            score = float.__float__(result) if isinstance(result, float) else int.__float__(result)
        except OverflowError:
            return errored("grade() returned an int too large for a float", printed)
        except BaseException as e:  # noqa: B902
            return errored("grade() returned a number that converts to no float: " + describe_exception(e), printed)
        if not math.isfinite(score):
            return errored("grade() returned %r, not a finite float" % score, printed)
        threshold = self.program.pass_threshold
        return types.Grade(
            score=score,
            passed=None if threshold is None else score >= threshold,
            label=None,
            reasoning=None,
            metrics=[],
        )


#: The builtins as sealed; a row that replaces or adds one does not pass it to the next row.
_SEALED_BUILTINS = {}
_MISSING = object()


def restore_shared_state():
    current = vars(builtins)
    # Identity, not ==: a hostile value's __eq__ must not run here.
    changed = len(current) != len(_SEALED_BUILTINS) or any(
        current.get(name, _MISSING) is not value for name, value in _SEALED_BUILTINS.items()
    )
    if changed:
        current.clear()
        current.update(_SEALED_BUILTINS)
    sys.stdout = sys.stderr = PRINTED


def session_for(config):
    # A home directory, like the working directory: `os.path.expanduser("~")` needs one, and
    # nltk's downloader looks for its data directory under it at import (the directory never
    # exists: nltk's data is absent, so what needs it raises nltk's LookupError). Set per call:
    # the environment of the snapshot is replaced by the (empty) one of the instance.
    if "HOME" not in os.environ:
        os.environ["HOME"] = "/"
    try:
        return Session(program_for(config))
    except ConfigError as e:
        raise Err(types.GradeError_InvalidConfig(valid_utf8(str(e))))



class NoFiles(PermissionError):
    """Raised by every filesystem entry point: the sandbox has no files."""


def _no_files(*args, **kwargs):
    raise NoFiles("the grader sandbox has no filesystem")


#: A file that marks the directory of the bundled packages (made by build-support/src/python.rs).
PACKAGES_MARKER = "flywheel-packages.txt"


def fill_library():
    """Compiles the standard library and the bundled packages into `library`'s in-memory
    archive, while they are still files (componentize-py's pre-initialisation)."""
    import os

    stdlib_dir = os.path.dirname(os.path.dirname(json.__file__))
    package_dirs = [p for p in sys.path if os.path.isfile(os.path.join(p, PACKAGES_MARKER))]
    standins_dir = os.path.join(os.path.dirname(library.__file__), "standins")
    library.build(standins_dir, stdlib_dir, package_dirs)


def seal():
    """Called once while componentize-py snapshots the interpreter: after this, no module is
    loaded from disk and the filesystem entry points of `os`, `io` and `builtins` raise
    PermissionError instead of reaching WASI stubs that trap."""
    import os

    for name in (
        "open", "stat", "lstat", "listdir", "scandir", "mkdir", "makedirs", "remove",
        "unlink", "rename", "replace", "rmdir", "removedirs", "chdir", "access",
        "chmod", "utime", "truncate", "readlink", "symlink", "link", "walk", "fwalk",
        "system", "popen", "execv", "execve", "spawnv", "fork", "kill",
    ):
        if hasattr(os, name):
            setattr(os, name, _no_files)
    io.open = _no_files
    # A fixed answer rather than an error: packages call `os.path.abspath(__file__)` at import
    # (deepdiff), which needs the working directory, and "/" reveals nothing.
    os.getcwd = lambda: "/"
    os.getcwdb = lambda: b"/"
    builtins.open = _no_files
    library.install()
    _seed_without_the_os()
    # rapidfuzz's native code is not bundled; this makes it pick its pure-Python code at once
    # rather than after failed imports.
    os.environ["RAPIDFUZZ_IMPLEMENTATION"] = "python"
    sys.addaudithook(_audit)
    sys.stdout = sys.stderr = PRINTED
    _SEALED_BUILTINS.update(vars(builtins))


def _seed_without_the_os():
    """`random.Random()` and `seed()` without an argument read the OS's entropy, a WASI call the
    sandbox stubs (it traps); packages make such generators at import (sympy). They are seeded
    from the module's generator instead, itself seeded at build time: deterministic, like
    `random.random()`. `os.urandom` and `random.SystemRandom` still trap."""
    import random

    seed = random.Random.seed

    def seed_without_the_os(self, a=None, version=2):
        if a is None:
            a = random._inst.getrandbits(128)
        seed(self, a, version)

    random.Random.seed = seed_without_the_os


def _audit(event, args):
    """Refuses what reaches WASI through C code the patches above do not cover. CPython's own
    `Py_fopen` raises the `open` event, as when the parser looks for the source line of a
    SyntaxError; without this it would reach a trapping stub."""
    if event == "open":
        raise NoFiles("the grader sandbox has no filesystem")


class Grading(exports.Grading):
    def info(self):
        return types.GraderInfo(
            sdk_version=VERSION,
            description="OpenAI python grader: runs `grade(sample, item)` from the definition's source",
        )

    def validate_config(self, config):
        try:
            program_for(config, check_signature=True)
        except ConfigError as e:
            raise Err(valid_utf8(str(e)))

    def grade(self, config, sample, item):
        return session_for(config).run_row(sample, item)

    def grade_batch(self, config, rows):
        try:
            session = session_for(config)
        except Err as e:
            return [Err(e.value) for _ in rows]
        out = []
        for row in rows:
            try:
                out.append(Ok(session.run_row(row.sample, row.item)))
            except Err as e:
                out.append(Err(e.value))
        return out


def warm_up():
    """Grades two rows at build time (one scored, one whose `grade` raises) and validates a
    config, so what CPython sets up lazily on a first call (the JSON scanner, the compiler's
    state, the exception and traceback machinery) is in the snapshot rather than paid again by
    every fresh instance. Leaves no program cached and no output buffered."""
    rows = json.dumps({"output_text": "a"}), json.dumps({"x": "a"})
    for source in (
        "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item.get('x') else 0.0\n",
        "def grade(sample, item):\n    raise ValueError('warm-up')\n",
    ):
        config = json.dumps({"type": "python", "name": "warm-up", "source": source})
        Grading().validate_config(config)
        Grading().grade(config, *rows)
    _programs.clear()
    PRINTED.reset()


fill_library()
seal()
warm_up()
# Everything alive now belongs to the snapshot. Frozen, it leaves the collector's generations:
# a collection in a fresh instance (CPython 3.14's incremental collector also walks the old
# generation a slice at a time) never visits those objects, so it never touches, and so never
# copies, the snapshot's pages.
gc.collect()
gc.freeze()
