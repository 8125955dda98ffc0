"""Expected failures: bad params, bad input, a run that cannot go on. The CLI prints their message as
`g2d <command>: error: ...` and exits 2; anything else is a bug and keeps its traceback.

Every message says what was wrong, in which file or key, and what to do about it.
"""

from __future__ import annotations

import errno


class G2DError(Exception):
    """A failure the user can fix; its message names the file or key and the fix."""


class RunError(G2DError, RuntimeError):
    """A stage cannot go on: a loss turned non-finite, a checkpoint is unreadable or unsafe, a split is empty."""


def describe_os_error(exc: OSError) -> str:
    """An OSError as a sentence naming the file and what to do: full disk, read-only or denied, missing."""
    if exc.errno is None:  # raised by g2d itself, with its own message
        return str(exc)
    where = exc.filename or "a file"
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return (
            f"{where}: no space left on the device (or quota exceeded); free space and rerun "
            "(finished outputs are kept, and training resumes after its last saved epoch)"
        )
    if exc.errno == errno.EROFS:
        return f"{where}: the file system is read-only; run where the outputs can be written"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied; check the owner and mode of the file and its folder"
    if exc.errno == errno.ENOENT:
        return f"{where}: not found; run the stage that produces it first, or fix the path in params.yaml"
    return f"{where}: {exc.strerror or exc}"
