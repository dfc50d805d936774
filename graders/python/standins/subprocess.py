"""`subprocess` for the grader sandbox, which cannot start processes.

Packages import `subprocess` at module level to run external tools from some functions (nltk's
`internals` for Java tools; asyncio and doctest in the standard library): this stand-in lets
them import, and every call, and constructing a `Popen`, raises `NoProcesses`. `os.system`,
`os.popen`, `fork` and `exec*` do not exist on WASI at all.
"""

PIPE = -1
STDOUT = -2
DEVNULL = -3


class NoProcesses(PermissionError):
    """Raised by every call of this module: the sandbox cannot start processes."""


def _no_processes(*args, **kwargs):
    raise NoProcesses("the grader sandbox cannot start processes")


class SubprocessError(Exception):
    pass


class CalledProcessError(SubprocessError):
    def __init__(self, returncode, cmd, output=None, stderr=None):
        self.returncode = returncode
        self.cmd = cmd
        self.output = self.stdout = output
        self.stderr = stderr


class TimeoutExpired(SubprocessError):
    def __init__(self, cmd, timeout, output=None, stderr=None):
        self.cmd = cmd
        self.timeout = timeout
        self.output = self.stdout = output
        self.stderr = stderr


class CompletedProcess:
    def __init__(self, args, returncode, stdout=None, stderr=None):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Popen:
    """Constructing one raises NoProcesses."""

    def __init__(self, *args, **kwargs):
        _no_processes()


run = call = check_call = check_output = getoutput = getstatusoutput = _no_processes
list2cmdline = _no_processes
