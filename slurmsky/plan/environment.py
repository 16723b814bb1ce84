"""The environment --export gives a job: Slurm's rule on this machine, and for a cloud the
same minus what must stay home.

A cloud gets a variable only if it passes (`withheld` says why one does not) or the user names
it (`--export=NAME`, the config's `export.allow`). What stays home:

- host-only variables (PATH, HOME, SLURM_*, ...): meaningless on another machine; silently;
- credentials, told by the name (PASSWORD, PASSWD, PASSPHRASE, SECRET, CREDENTIAL or APIKEY
  anywhere in it; a word such as KEY, PASS, PWD, PAT, JWT, DSN, AUTH, SESSION, NETRC; a word
  ending in TOKEN or WEBHOOK; the credential prefixes AWS_, AZURE_, GOOGLE_, GCLOUD_, GPG_,
  OP_SESSION_, VAULT_, unless its last word says where something is: AWS_CA_BUNDLE,
  AZURE_CONFIG_DIR; the config's `export.deny`) or by the value (a URL with user or password, a private
  key, a known token shape, `password=` inside, or a long random-looking word): these are
  listed by name once on stderr, so a script that needed one is easy to fix.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter

from slurmsky.config import Config
from slurmsky.parse.request import JobRequest

# What only makes sense on the submit host (matched without regard to case).
HOST_ONLY = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "OLDPWD",
    "TERM",
    "DISPLAY",
    "HOSTNAME",
    "MAIL",
    "SHLVL",
    "_",
    "TMPDIR",
    "XDG_*",
    "DBUS_*",
    "LS_COLORS",
    "LD_*",
    "PYTHONPATH",
    "PYTHONHOME",
    "PS1",
    "TMUX*",
    "STY",
    "WINDOWID",
    "SSH_*",
    "KRB5*",
    "SKYPILOT_*",
    "SLURMSKY_*",
    "SLURM_*",
    "SBATCH_*",
    "SRUN_*",
    "SALLOC_*",
)
# Name prefixes of the clouds' and tools' credential variables.
SECRET_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCLOUD_", "GPG_", "OP_SESSION_", "VAULT_")
# A word of the name (split at non-letters and case changes) that says "credential" ...
SECRET_WORDS = frozenset(
    "KEY KEYS PASS PWD PAT JWT DSN AUTH SESSION COOKIE NETRC KUBECONFIG PRIVATE SALT OTP "
    "CREDS SIGNATURE".split()
)
# ... or that ends with one of these (GITHUBTOKEN; not TOKENIZERS_PARALLELISM) ...
SECRET_ENDINGS = ("TOKEN", "TOKENS", "WEBHOOK", "WEBHOOKS")
# ... or holds one of these anywhere (DBPASSWORD, MYAPIKEY).
SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "CREDENTIAL", "APIKEY")
# A name whose last word is one of these says where something is (AWS_CA_BUNDLE,
# AZURE_CONFIG_DIR): a credential prefix alone does not make it one (its value still may).
LOCATION_WORDS = frozenset("BUNDLE PATH PATHS FILE DIR HOME ROOT CACHE".split())
SECRET_VALUES = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]+@"  # scheme://user[:password]@
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY"  # PEM, OpenSSH, PGP private keys
    r"|(?i:\b(?:password|passwd|pwd|secret|token|api_?key)\s*[=:])"  # password=... inside
    r"|(?i:\bpassword\s+\S)"  # .netrc text
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # a JWT
    # known token shapes: GitHub, GitLab, Slack, OpenAI/Stripe, AWS, Google, Hugging Face, PyPI
    r"|\b(?:gh[pousr]_|github_pat_|glpat-|xox[abposr]-|sk-|sk_live_|rk_live_|hf_|pypi-|npm_)"
    r"[A-Za-z0-9_-]{16,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{30,}"
)
WORD = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")
NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name.upper(), p.upper()) for p in patterns)


def _secret_name(name: str) -> bool:
    upper = name.upper()
    if any(part in upper for part in SECRET_PARTS):
        return True
    words = [w.upper() for w in NAME_WORDS.findall(name)]
    if upper.startswith(SECRET_PREFIXES) and not (words and words[-1] in LOCATION_WORDS):
        return True
    return any(w in SECRET_WORDS or w.endswith(SECRET_ENDINGS) for w in words)


def _random_looking(word: str) -> bool:
    """A long word whose characters look drawn at random (a key, a token, a hash), not one
    made of words and numbers (a path, a run name, a version, a date)."""
    bare = word.replace("-", "")
    if len(bare) >= 24 and re.fullmatch(r"[0-9a-fA-F]+", bare):  # hashes, UUIDs, hex keys
        return not (bare.isdigit() or bare.isalpha())
    path = word.startswith(("/", "~", "."))
    if not path and len(word) >= 24 and _random(word, 4.3, 0.5):
        return True  # base64 with separators in it (Azure's client secrets)
    runs = re.split(r"[-_.~/]" if path else r"[-_.~]", word)
    return any(len(run) >= 16 and _random(run, 3.3, 0.35) for run in runs)


def _random(text: str, entropy: float, changes: float) -> bool:
    """Whether text has at least this Shannon entropy (bits per character) and its kind of
    character (lower, upper, digit, other) changes at least this often along it."""
    n = len(text)
    if -sum(k / n * math.log2(k / n) for k in Counter(text).values()) < entropy:
        return False
    kinds = [c.islower() - c.isupper() + 2 * c.isdigit() for c in text]
    return sum(a != b for a, b in zip(kinds, kinds[1:])) >= changes * (n - 1)


def _secret_value(value: str) -> bool:
    return bool(SECRET_VALUES.search(value)) or any(map(_random_looking, WORD.findall(value)))


def withheld(name: str, value: str, deny=()) -> str | None:
    """Why a variable stays home from a cloud: "host" (host-only), "secret", or None."""
    if _secret_value(value):
        return "secret"
    if _matches(name, HOST_ONLY):
        return "host"
    if _matches(name, deny) or _secret_name(name):
        return "secret"
    return None


def job_environment(
    req: JobRequest, cfg: Config, *, for_cloud: bool, kept_home: list[str] | None = None
) -> dict:
    """The environment --export gives the job.

    Locally this is Slurm's rule exactly. For a cloud, ALL means "all that passes": host-only
    variables and credentials stay home unless the user names them in --export=NAME (or the
    config's export.allow); the credentials' names are appended to kept_home.
    """
    exp = req.export
    env = req.submit_env
    mode = exp.mode if exp else "ALL"
    names = exp.names if exp else ()
    if mode == "ALL":
        chosen = dict(env)
        if for_cloud:
            deny = tuple(cfg.export.get("deny", ()))
            allow = tuple(cfg.export.get("allow", ()))
            for key, value in env.items():
                why = None if _matches(key, allow) else withheld(key, value, deny)
                if why:
                    del chosen[key]
                if why == "secret" and kept_home is not None and key not in names:
                    kept_home.append(key)
    else:
        chosen = {}
    for name in names:
        if name in env:
            chosen[name] = env[name]
    if exp:
        chosen.update(dict(exp.assignments))
    if req.command == "sbatch" and req.open_mode:  # sbatch hands --open-mode on to the sruns
        chosen["SLURM_OPEN_MODE"] = req.open_mode[0]  # "a" or "t", as Slurm's opt.c sets it
    return chosen
