"""The one error type commands turn into Slurm-style messages and exit codes."""

import sys


class SlurmError(Exception):
    """A user-facing failure.

    ``notes`` are printed first, verbatim (lines Slurm prints before its error, which may
    hold user text); ``lines`` follow as ``<prog>: error: <line>`` (or verbatim, with
    ``{prog}`` filled in, when ``bare``); then the command exits with ``exit_code``.
    """

    def __init__(self, *lines: str, exit_code: int = 1, bare: bool = False, notes: tuple = ()):
        super().__init__("\n".join(lines))
        self.lines = list(lines)
        self.exit_code = exit_code
        self.bare = bare
        self.notes = tuple(notes)

    def render(self, prog: str) -> str:
        text = "".join(line + "\n" for line in self.notes)
        if self.bare:
            return text + "".join(line.replace("{prog}", prog) + "\n" for line in self.lines)
        return text + "".join(f"{prog}: error: {line}\n" for line in self.lines)

    def exit(self, prog: str):
        """Print the message as `prog` and exit with the error's code."""
        sys.stderr.write(self.render(prog))
        sys.exit(self.exit_code)
