"""diyc's exceptions.  Each carries the exit code the CLI uses, following
docker: 125 when diyc fails or rejects its input, 126 when the command
cannot be executed, 127 when it is not found."""

import errno
import os


class DiycError(Exception):
    """Base class: diyc itself failed or refused its input."""
    exit_code = 125


class InvalidArgument(DiycError):
    """A value diyc cannot take: a bad size, name, path, option."""


class ArgumentTypeError(InvalidArgument, TypeError):
    """An argument of the wrong type (a str where a list is wanted, a number
    where a str is).  A TypeError, as Python's own for a wrong type, and an
    InvalidArgument, so the CLI and `except DiycError` treat it as any other
    refused input."""


class NotFound(DiycError):
    pass


class ImageNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class Conflict(DiycError):
    """A name in use, an image in use, a container in the wrong state."""


class NetworkError(DiycError):
    """The kernel (or nft) refused a network set-up step."""


class StateWriteError(DiycError):
    """A state file could not be written (full disk, quota, I/O error...);
    the file is as it was."""

    def __init__(self, path, os_error):
        self.path, self.errno = path, os_error.errno
        super().__init__(f"{path}: cannot write: {os_error.strerror or os_error}")


class CorruptStateFile(DiycError, ValueError):
    """A state file that does not hold what diyc writes.  Also a ValueError,
    as the JSON parser's own errors are, for callers that skip unreadable
    records."""

    def __init__(self, path, detail):
        self.path = path
        super().__init__(f"{path}: corrupt state file ({detail}): restore it or remove it")


# errno values that say the machine, not diyc or its input, is at fault
ENVIRONMENT_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS))


def environment_error(os_error):
    """The one-line DiycError for an OSError the machine caused (a full
    disk, a quota, an I/O error, a read-only file system), else None."""
    if os_error.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f"{os_error.filename}: " if os_error.filename else ""
    return DiycError(f"{where}{os_error.strerror}")


class InitError(DiycError):
    """A step of container init failed inside the cloned child (or while
    cloning it).  `step` names it, as in `pivot_root: Invalid argument`."""

    def __init__(self, step, errnum, detail=""):
        self.step, self.errno, self.detail = step, errnum, detail
        if errnum or not detail:
            reason = os.strerror(errnum) if errnum else "failed"
            super().__init__(f"{step}: {reason}" + (f" ({detail})" if detail else ""))
        else:  # no errno: the detail says it all ("killed by SIGSYS before execve")
            super().__init__(f"{step}: {detail}")


class CommandNotFound(InitError):
    exit_code = 127

    def __str__(self):
        return f"executable file not found: {self.detail}"


class CommandNotExecutable(InitError):
    exit_code = 126

    def __str__(self):
        return f"cannot execute {self.detail}: {os.strerror(self.errno)}"


def init_error(step, errnum, detail=""):
    """The exception for a (step, errno, detail) report from the child."""
    if step == "exec":
        cls = CommandNotFound if errnum == 2 else CommandNotExecutable
        return cls(step, errnum, detail)
    return InitError(step, errnum, detail)
