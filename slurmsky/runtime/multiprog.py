"""``srun --multi-prog FILE [ARGS...]``: a program per task, from Slurm's configuration file.

Each line is ``RANKS PROGRAM [ARGS...]``: RANKS a list like ``0-2,5`` or ``*``; ``%t`` in the
words becomes the task's rank and ``%o`` its offset within the line's ranks; ``#`` starts a
comment, a trailing backslash continues a line, words are split on white space (quotes are
not interpreted, as in Slurm). srun's own ARGS follow every program's.
"""


class MultiProgError(Exception):
    """The file is unusable: the message is srun's error line(s)."""


def _ranks(field, ntasks):
    """-> the ranks a line's first field names, in order."""
    if field == "*":
        return list(range(ntasks))
    ranks = []
    for part in field.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(part)
        ranks.extend(range(int(first), int(last or first) + 1))
    return ranks


def _lines(text):
    """-> (line number, words) of the non-empty lines, continuations joined."""
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        start = start or number
        line = line.split("#", 1)[0] if not pending else line
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = (pending + line).split()
        pending, first = "", start
        start = 0
        if words:
            yield first, words


def programs(command, ntasks):
    """-> {rank (str): argv} for every task of the step; command is [FILE, ARGS...]."""
    path, extra = command[0], command[1:]
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise MultiProgError("srun: error: Could not open multi_prog config file %s" % path)
    table = {}
    for number, words in _lines(text):
        try:
            ranks = _ranks(words[0], ntasks)
        except ValueError:
            ranks = None
        if not ranks or len(words) < 2 or max(ranks) >= ntasks:
            raise MultiProgError(
                "srun: error: Line %d of configuration file %s invalid" % (number, path)
            )
        for offset, rank in enumerate(ranks):
            if str(rank) in table:
                raise MultiProgError(
                    "srun: error: Duplicate record for task %d\n"
                    "srun: error: Line %d of configuration file %s invalid" % (rank, number, path)
                )
            table[str(rank)] = [
                w.replace("%t", str(rank)).replace("%o", str(offset)) for w in words[1:]
            ] + extra
    for rank in range(ntasks):
        if str(rank) not in table:
            raise MultiProgError(
                "srun: error: Configuration file %s invalid, no record for task id %d"
                % (path, rank)
            )
    return table
