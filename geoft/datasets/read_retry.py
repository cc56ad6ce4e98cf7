"""A sample that fails to load mid-run is read again a few times, then ends the run naming its file.

The full data check at the start has read every file, so a read that fails later is a file that
changed (replaced, truncated, removed) or a storage hiccup (a network file system timing out). The
hiccup passes on a second try; the changed file still fails, and :class:`SampleReadError` ends the
run with the file and split named. Checkpoints already written stay as they are, so the run resumes
from ``last.ckpt`` once the file is fixed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from geoft.datasets.problems import FileDataError
from geoft.errors import ConfigError, DataError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_DELAYS_S = (0.5, 2.0)  # waits before the second and third attempt
_sleep = time.sleep  # tests replace it to change the files between attempts without waiting


class SampleReadError(DataError):
    """A sample could not be read during a run, after retries.

    Re-raised by a DataLoader worker, torch rebuilds it from the worker's traceback text; the original
    message (the last ``SampleReadError:`` line of that text) is kept, not the traceback.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        if hint is None and message.startswith(f"Caught {type(self).__name__} in DataLoader worker"):
            original = message.rsplit(f"{type(self).__name__}: ", 1)[-1].strip()
            message, _, rest = original.partition("\nHint: ")
            hint = rest or None
        super().__init__(message, hint=hint)


def retryable(err: BaseException) -> bool:
    """Errors a second read may not repeat: I/O errors and unreadable or changed files, not config."""
    return isinstance(err, OSError) or (isinstance(err, DataError) and not isinstance(err, ConfigError))


def load_with_retries(load: Callable[[], T], describe: Callable[[], str], split: str) -> T:
    """``load()``, tried again after each of :data:`RETRY_DELAYS_S` when it fails with a
    :func:`retryable` error; after the last attempt, a :class:`SampleReadError` naming the sample
    (``describe()``, called only on a failure) and ``split``."""
    attempts = len(RETRY_DELAYS_S) + 1
    for attempt in range(1, attempts + 1):
        try:
            return load()
        except Exception as err:
            if not retryable(err) or isinstance(err, SampleReadError):
                raise
            reason = err.message if isinstance(err, DataError) else f"{type(err).__name__}: {err}"
            what = describe()
            path = err.path if isinstance(err, FileDataError) else getattr(err, "filename", None)
            where = f"{what}, file {path}" if path and str(path) not in what else what
            if attempt == attempts:
                again = (
                    "resume from the run's last.ckpt (geoft fit -c CONFIG --run_dir RUN --ckpt_path "
                    "RUN/checkpoints/last.ckpt)"
                    if split in ("train", "val")
                    else "run the command again"
                )
                raise SampleReadError(
                    f"reading {where} of the {split} dataset failed {attempts} times during the run: {reason}",
                    hint="the file changed or became unreadable after the run started; restore "
                    f"or fix it (or remove it from the dataset) and {again}",
                ) from err
            delay = RETRY_DELAYS_S[attempt - 1]
            log.warning(
                "geoft: reading %s of the %s dataset failed (%s); trying again in %.1f s (attempt %d of %d)",
                where,
                split,
                reason,
                delay,
                attempt + 1,
                attempts,
            )
            _sleep(delay)
    raise AssertionError("unreachable")
