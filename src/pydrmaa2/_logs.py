"""Reading a job's output file as lines, whole or followed while the job runs (``tail -f``).

Below the sessions: the session finds the file (``JobBook.output_file``) and says when the job
has ended; this module only reads.
"""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: How often a follower looks for new output (and whether the job has ended) when none came.
FOLLOW_POLL = 0.2
#: Bytes read at a time.
CHUNK = 1 << 16


def last_lines_offset(path: Path, n: int) -> int:
    """The offset in ``path`` where its last ``n`` lines begin (a final line without a newline
    counts), read backwards in blocks so a large file costs only its tail."""
    if n <= 0:
        return os.path.getsize(path)
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, newlines = end, 0
        if end and (f.seek(end - 1), f.read(1))[1] == b"\n":
            newlines = -1  # the file's final newline ends the last line, it does not start one
        while pos > 0:
            step = min(CHUNK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            for i in range(len(block) - 1, -1, -1):
                if block[i] == 0x0A:
                    newlines += 1
                    if newlines == n:
                        return pos + i + 1
        return 0


def log_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """The lines of a log read as chunks (an engine's log stream), as ``read_lines`` gives
    them."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def read_lines(path: Path, *, follow: bool, tail: int | None,
               ended: Callable[[], bool]) -> Iterator[str]:
    """The lines of ``path`` (each with its newline; a last line without one at the end), as
    UTF-8 text (undecodable bytes replaced). ``tail``: only the last lines. ``follow``: keep
    reading what is written until ``ended()`` says the job has ended and all is read (a file not
    there yet is waited for)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    offset: int | None = None
    while True:
        if offset is None and path.exists():
            offset = last_lines_offset(path, tail) if tail is not None else 0
        data = b""
        if offset is not None:
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(CHUNK)
            except FileNotFoundError:  # reaped meanwhile: nothing more to read
                data = b""
            offset += len(data)
        if data:
            pending += decoder.decode(data)
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line + "\n"
            continue
        # Nothing new: the end, unless following a job that may write more.
        if not follow or ended():
            if follow and offset is not None:
                # Written between the last read and the end: read it before stopping.
                try:
                    with open(path, "rb") as f:
                        f.seek(offset)
                        rest = f.read()
                except FileNotFoundError:
                    rest = b""
                if rest:
                    offset += len(rest)
                    pending += decoder.decode(rest)
                    *lines, pending = pending.split("\n")
                    yield from (line + "\n" for line in lines)
            pending += decoder.decode(b"", final=True)
            if pending:
                yield pending
            return
        time.sleep(FOLLOW_POLL)
