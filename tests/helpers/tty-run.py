#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a command with a pseudo-terminal as its stdin/stdout/stderr, answer
its prompt, and pass its output and exit status through.

usage: tty-run.py ANSWER PROMPT -- COMMAND [ARGS...]
When PROMPT appears in the output, ANSWER and a newline are typed. The run is
bounded: after 30 s the child is killed and the exit status is 124.
"""
import os
import pty
import select
import signal
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit(__doc__)
    answer, prompt, argv = sys.argv[1], sys.argv[2].encode(), sys.argv[4:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    seen, answered = b"", False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        seen += data
        if not answered and prompt in seen:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit(124)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)


if __name__ == "__main__":
    main()
