"""The one error type commands turn into Slurm-style messages and exit codes."""


class SlurmError(Exception):
    """A user-facing failure.

    ``lines`` are printed as ``<prog>: error: <line>`` (or verbatim when ``bare``),
    then the command exits with ``exit_code``.
    """

    def __init__(self, *lines: str, exit_code: int = 1, bare: bool = False):
        super().__init__("\n".join(lines))
        self.lines = list(lines)
        self.exit_code = exit_code
        self.bare = bare

    def render(self, prog: str) -> str:
        if self.bare:
            return "".join(line.replace("{prog}", prog) + "\n" for line in self.lines)
        return "".join(f"{prog}: error: {line}\n" for line in self.lines)
