"""The standard library and the bundled packages, held in the interpreter's memory.

The component has no filesystem when it grades (`--stub-wasi`): CPython's usual importers
would search directories that do not exist and reach WASI stubs that trap. So while
componentize-py pre-initialises the interpreter (when the standard library and the bundled
packages are still readable as files), `build()` reads every module's source, compiles it and
keeps its marshalled, zlib-compressed code object in a dict; the interpreter snapshot then holds
that dict. At grading time `SandboxFinder`, the only finder on `sys.meta_path`, serves imports:

- a module in `LEFT_OUT` (it would reach the OS: processes, sockets, files through C code) is
  refused with a `ModuleNotFoundError` saying why;
- an extension module compiled into the interpreter is loaded as usual (`BuiltinImporter`);
- a module of the archive is decompressed and unmarshalled (tens of microseconds for a small
  module; nothing is compiled at grading time): the standard library, the bundled packages and
  the stand-ins of `standins/` (`socket`, `subprocess`, `sqlite3`, `regex`), which shadow the
  modules of the same name and import but raise a PermissionError when called;
- a finder a package added to `sys.meta_path` at grading time (six's `six.moves`) is asked;
- anything else is refused with a `ModuleNotFoundError` that names the module and, for a
  package of OpenAI's grader image that is not bundled, says why and points at the docs' table.

Data files of the bundled packages (jsonschema's metaschemas) are kept too and served through
`importlib.resources.files()` and `loader.get_data()`. A few lines of package source are
rewritten while compiling (`PATCHES`: rouge-score's numpy import, sympy's ctypes import),
each checked to still match.

This module owns that archive and the finder; `app.py` owns grading.
"""

import marshal
import os
import sys
import zlib
from importlib.machinery import BuiltinImporter, ModuleSpec
from importlib.resources.abc import Traversable

#: Source rewrites applied while compiling the bundled packages: file -> [(old, new)]. Each
#: `old` must occur in the file, so a version change that moves it fails the build instead of
#: silently dropping the rewrite.
PATCHES = {
    # rouge-score imports numpy at module level but needs only `np.argmax` for scoring; the rest
    # (BootstrapAggregator) fails when called, naming numpy. Only rouge-score sees the subset.
    "rouge_score/rouge_scorer.py": [("import numpy as np", "import _flywheel_rouge_numpy as np")],
    "rouge_score/scoring.py": [("import numpy as np", "import _flywheel_rouge_numpy as np")],
    # sympy reads the size of a C long from ctypes (left out: it calls native code) for one
    # constant; a C long is 4 bytes on wasm32.
    "sympy/external/gmpy.py": [(
        "from ctypes import c_long, sizeof",
        "c_long = None\ndef sizeof(_): return 4  # a C long on wasm32 (ctypes is left out)",
    )],
}

#: Standard-library modules refused on purpose, with the reason the error gives. Modules that
#: import one of them (asyncio imports selectors…) fail with the same error, naming the dependency.
LEFT_OUT = {
    "multiprocessing": "it starts processes",
    "_posixsubprocess": "it starts processes (`subprocess` is a stand-in whose calls raise NoProcesses)",
    "pty": "it starts processes",
    "_socket": "it opens network connections (`socket` is a stand-in whose calls raise NoNetwork)",
    "ssl": "it opens network connections",
    "_ssl": "it opens network connections",
    "select": "it waits on OS file descriptors",
    "selectors": "it waits on OS file descriptors",
    "mmap": "it maps OS files",
    "_sqlite3": "it opens database files through the OS (`sqlite3` is a stand-in whose `connect` raises)",
    "dbm": "it keeps databases in OS files",
    "shelve": "it keeps databases in OS files",
    "webbrowser": "it starts a browser",
    "ctypes": "it calls native code",
    "_ctypes": "it calls native code",
    "faulthandler": "it writes to OS file descriptors",
    "tkinter": "it needs Tk, a native GUI library (not in the WASI build)",
    "turtle": "it needs Tk, a native GUI library (not in the WASI build)",
    "turtledemo": "it needs Tk, a native GUI library (not in the WASI build)",
    "idlelib": "it is the IDLE editor and needs Tk",
    "ensurepip": "it installs packages into a filesystem",
    "venv": "it creates directories and starts processes",
}

#: Packages of OpenAI's grader image that are not bundled, with the reason.
NOT_BUNDLED = {
    "numpy": "native code with no WASI build",
    "scipy": "native code with no WASI build",
    "pandas": "native code with no WASI build (and needs numpy)",
    "sklearn": "scikit-learn is native code with no WASI build",
    "pydantic": "needs pydantic-core, native (Rust) code with no WASI build",
    "pydantic_core": "native (Rust) code with no WASI build",
    "rdkit": "native code with no WASI build",
    "skbio": "scikit-bio is native code with no WASI build",
    "ast_grep_py": "native (Rust) code with no WASI build",
}

#: Standard-library extension modules of other platforms.
OTHER_PLATFORMS = {
    "nt": "Windows", "msvcrt": "Windows", "winreg": "Windows", "winsound": "Windows",
    "_winapi": "Windows", "_wmi": "Windows", "_overlapped": "Windows", "_scproxy": "macOS",
}

DOCS = "docs/python-graders.md"

#: name -> (is_package, origin, compressed marshalled code)
_MODULES = {}
#: "package/dir/file.json" -> bytes: data files of the bundled packages.
_DATA = {}

#: Directories of the standard library that are never read (tests, GUI, installers).
_SKIPPED_DIRS = {"site-packages", "test", "tests", "idle_test", "__pycache__", "turtledemo",
                 "idlelib", "tkinter", "ensurepip", "venv", "config-3.14-wasm32-wasi",
                 "benchmarks"}


def _module_name(relative):
    parts = relative[:-3].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _add_tree(root, prefix, keep_data):
    """Compiles every `.py` under `root` into the archive; `prefix` names the origin."""
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.endswith(".dist-info"))
        relative_dir = os.path.relpath(directory, root)
        relative_dir = "" if relative_dir == "." else relative_dir + "/"
        for file in sorted(files):
            relative = relative_dir + file
            path = os.path.join(directory, file)
            if file.endswith(".py"):
                name, is_package = _module_name(relative)
                if not name or name in _MODULES or "-" in name:
                    continue
                with open(path, "rb") as f:
                    source = f.read()
                if prefix == "<packages>/":
                    source = _patched(relative, source)
                origin = prefix + relative
                try:
                    code = compile(source, origin, "exec", dont_inherit=True)
                except SyntaxError:
                    continue  # Python 2 leftovers in some packages; they cannot be imported anyway
                _MODULES[name] = (is_package, origin, zlib.compress(marshal.dumps(code), 6))
            elif keep_data and relative_dir and not file.endswith((".pyc", ".pyi", ".so", ".c", ".h")):
                with open(path, "rb") as f:
                    _DATA[relative] = f.read()


def _patched(relative, source):
    for old, new in PATCHES.get(relative, ()):
        if old.encode() not in source:
            raise RuntimeError("library.PATCHES: %r no longer contains %r" % (relative, old))
        source = source.replace(old.encode(), new.encode())
    return source


def build(standins_dir, stdlib_dir, package_dirs):
    """Fills the archive; called once, while componentize-py pre-initialises the interpreter."""
    # The stand-ins first, so they shadow the standard library's `socket`, `subprocess` and
    # `sqlite3`; then the packages: a bundled `typing_extensions` must not be shadowed by a
    # stdlib name.
    _add_tree(standins_dir, "<sandbox>/", keep_data=False)
    for directory in package_dirs:
        _add_tree(directory, "<packages>/", keep_data=True)
    _add_tree(stdlib_dir, "<stdlib>/", keep_data=False)


def archive_size():
    """Compressed bytes held: code, then data files."""
    return sum(len(v[2]) for v in _MODULES.values()), sum(len(v) for v in _DATA.values())


class MemoryPath(Traversable):
    """A path into the bundled packages' data files, for `importlib.resources.files()`."""

    def __init__(self, path):
        self.path = path.strip("/")

    @property
    def name(self):
        return self.path.rsplit("/", 1)[-1]

    def iterdir(self):
        prefix = self.path + "/"
        names = {key[len(prefix):].split("/", 1)[0] for key in _DATA if key.startswith(prefix)}
        return iter([MemoryPath(prefix + n) for n in sorted(names)])

    def is_file(self):
        return self.path in _DATA

    def is_dir(self):
        prefix = self.path + "/"
        return any(key.startswith(prefix) for key in _DATA)

    def joinpath(self, *parts):
        path = self.path
        for part in parts:
            path = path + "/" + str(part).strip("/")
        return MemoryPath(path)

    __truediv__ = joinpath

    def read_bytes(self):
        try:
            return _DATA[self.path]
        except KeyError:
            raise FileNotFoundError(self.path) from None

    def read_text(self, encoding=None, errors=None):
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

    def open(self, mode="r", *args, **kwargs):
        import io

        if "w" in mode or "a" in mode or "+" in mode:
            raise PermissionError("the grader sandbox has no filesystem")
        data = self.read_bytes()
        if "b" in mode:
            return io.BytesIO(data)
        return io.TextIOWrapper(io.BytesIO(data), *args, **kwargs)

    def __repr__(self):
        return "MemoryPath(%r)" % self.path


class _Resources:
    def __init__(self, package):
        self.package = package

    def files(self):
        return MemoryPath(self.package.replace(".", "/"))


class ArchiveLoader:
    """Loads a module of the archive: decompress, unmarshal, execute."""

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        code = marshal.loads(zlib.decompress(_MODULES[module.__spec__.name][2]))
        exec(code, module.__dict__)

    @staticmethod
    def get_resource_reader(name):
        return _Resources(name)

    @staticmethod
    def get_data(path):
        for prefix in ("<packages>/", "/"):
            if path.startswith(prefix):
                path = path[len(prefix):]
        try:
            return _DATA[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    @staticmethod
    def is_package(name):
        return _MODULES[name][0]


def refusal(name):
    """The ModuleNotFoundError for a module the sandbox does not serve, or None."""
    top = name.split(".", 1)[0]
    for candidate in (name, top):
        if candidate in LEFT_OUT:
            return ModuleNotFoundError(
                "No module named %r in the grader sandbox: %r is left out because %s "
                "(see %s)" % (name, candidate, LEFT_OUT[candidate], DOCS),
                name=name,
            )
    if top in NOT_BUNDLED:
        return ModuleNotFoundError(
            "No module named %r in the grader sandbox: the package %r is not bundled (%s; see "
            "the package table in %s)" % (name, top, NOT_BUNDLED[top], DOCS),
            name=name,
        )
    return None


class SandboxFinder:
    """The only entry of `sys.meta_path` once sealed: see the module docs."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        error = refusal(name)
        if error is not None:
            raise error
        if name in sys.builtin_module_names:
            return BuiltinImporter.find_spec(name)
        entry = _MODULES.get(name)
        if entry is not None:
            is_package, origin, _ = entry
            spec = ModuleSpec(name, ArchiveLoader, origin=origin, is_package=is_package)
            # Sets `__file__` (some packages derive names from it); reading it fails like any file.
            spec.has_location = True
            return spec
        for finder in sys.meta_path:
            # Finders a package added at grading time (six's importer of `six.moves`).
            if finder is SandboxFinder:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                return spec
        top = name.split(".", 1)[0]
        if top in OTHER_PLATFORMS:
            why = "it exists on %s only" % OTHER_PLATFORMS[top]
        elif top in sys.stdlib_module_names:
            why = "its C extension is not part of CPython's WASI build"
        else:
            why = "it has the standard library and the packages listed in %s" % DOCS
        raise ModuleNotFoundError(
            "No module named %r in the grader sandbox (%s)" % (name, why), name=name
        )

    @staticmethod
    def invalidate_caches():
        pass


def install():
    """Makes `SandboxFinder` the only finder and drops the path-based importer's caches."""
    sys.meta_path[:] = [SandboxFinder]
    sys.path_hooks[:] = []
    sys.path_importer_cache.clear()
