"""`sqlite3` for the grader sandbox, which has no files: the `_sqlite3` extension is left out.

nltk's corpus readers import `sqlite3` at module level for one reader (panlex_lite): this
stand-in lets them import, and `sqlite3.connect` raises `NoFiles`-like `PermissionError`.
"""


class NoDatabase(PermissionError):
    """Raised by `connect`: the sandbox has no files to keep a database in."""


class Error(Exception):
    pass


class DatabaseError(Error):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class Connection:
    def __init__(self, *args, **kwargs):
        connect()


def connect(*args, **kwargs):
    raise NoDatabase("the grader sandbox has no files to open a database in")


sqlite_version = version = "0 (stand-in)"
