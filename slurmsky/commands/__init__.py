"""The user-facing commands (sbatch, srun, squeue, ...), each `main()` an entry point.

Importing this package, which every command does first, gives SIGINT its default action, as
in Slurm's C commands: Ctrl-C (like SIGTERM and SIGHUP, whose action is already the
default) ends the command at once, by the signal, without a Python traceback. A section that
must not be cut (sbatch's job stored and its id printed) holds them off
(`core.submit.uninterrupted`); srun and salloc install handlers of their own. SIGINT that
was ignored (a background job of a script) stays ignored.
"""

import _signal

if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
