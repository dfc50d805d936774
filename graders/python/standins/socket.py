"""`socket` for the grader sandbox, which has no network.

Much of the standard library imports `socket` at module level but uses it only in functions
(`email.utils`, `http.client`, `urllib.request`, which jsonschema imports): this stand-in lets
those import, and every call, and constructing a `socket.socket`, raises `NoNetwork`.
"""


class NoNetwork(PermissionError):
    """Raised by every call of this module: the sandbox has no network."""


def _no_network(*args, **kwargs):
    raise NoNetwork("the grader sandbox has no network")


class socket:
    """Constructing one raises NoNetwork."""

    def __init__(self, *args, **kwargs):
        _no_network()


SocketType = socket
error = OSError
herror = type("herror", (OSError,), {"__module__": "socket"})
gaierror = type("gaierror", (OSError,), {"__module__": "socket"})
timeout = TimeoutError
_GLOBAL_DEFAULT_TIMEOUT = object()
has_ipv6 = False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name.isupper():
        return 0  # AF_INET, SOCK_STREAM…: only ever passed to calls that raise
    return _no_network
