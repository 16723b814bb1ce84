"""slurmsky.parse.script against Slurm 22.05: the scripts of the directive captures in
shared/reference/slurm-captures, its error texts, and properties of the tokeniser."""

import re
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from slurmsky.errors import SlurmError
from slurmsky.parse import script as script_module
from slurmsky.parse.script import (
    _MARKS,
    Directive,
    ModuleCommand,
    Script,
    _directive_scanner,
    _module_scanner,
    _parser,
    _read,
    _read_directives,
    parse_script,
    wrap_script,
)


def directives(text):
    return [(d.lineno, d.words) for d in parse_script(text).directives]


def modules(body):
    return [(m.verb, m.args) for m in parse_script("#!/bin/sh\n" + body).modules]


def error_text(text, path=None):
    with pytest.raises(SlurmError) as info:
        parse_script(text, path)
    return info.value.render("sbatch"), info.value.exit_code


# Each capture's script, verbatim, and the words that give the job what Slurm showed.
CAPTURES = {
    # 21 first debug 7:00: parsing stops at "echo started"
    "directive-after-command": (
        "#!/bin/bash\n#SBATCH --job-name=first\n\n# a normal comment; blank line above\n"
        "#SBATCH --time=7\necho started\n#SBATCH --job-name=after_command\n"
        "#SBATCH --partition=gpu\n",
        [(2, ("--job-name=first",)), (5, ("--time=7",))],
    ),
    # 25 d-set.sh: a command before any directive hides them all
    "directive-after-set": (
        "#!/bin/bash\nset -e\n#SBATCH --job-name=after_set\necho hi\n",
        [],
    ),
    # 26 shortname 6:00 1 2 300M
    "directive-forms": (
        "#!/bin/bash\n#SBATCH -J shortname\n#SBATCH --time 6\n#SBATCH --ntasks=2\n"
        "#SBATCH --mem=300M\necho hi\n",
        [
            (2, ("-J", "shortname")),
            (3, ("--time", "6")),
            (4, ("--ntasks=2",)),
            (5, ("--mem=300M",)),
        ],
    ),
    # 27 after_indented debug 9:00: indented lines are skipped, not a stop
    "directive-indented-stops": (
        "#!/bin/bash\n  #SBATCH --partition=gpu\n#SBATCH --job-name=after_indented\n"
        "\t# tab-indented comment\n#SBATCH --time=9\necho hi\n",
        [(3, ("--job-name=after_indented",)), (5, ("--time=9",))],
    ),
    # 24|my job|a b # c
    "directive-quoted": (
        '#!/bin/bash\n#SBATCH --job-name="my job"\n#SBATCH --comment="a b # c"\necho hi\n',
        [(2, ("--job-name=my job",)), (3, ("--comment=a b # c",))],
    ),
    # 22 d-space.sh debug 3:00
    "directive-space-lowercase-indent": (
        "#!/bin/bash\n# SBATCH --job-name=spaced\n#SBATCH --time=3\n"
        "#sbatch --job-name=lowercase\n  #SBATCH --partition=gpu\necho hi\n",
        [(3, ("--time=3",))],
    ),
    # 23 withcomment gpu 4:00 2
    "directive-trailing-comment": (
        "#!/bin/bash\n#SBATCH --job-name=withcomment # trailing comment\n"
        "#SBATCH --time=4   # four minutes\n#SBATCH -p gpu -c 2\necho hi\n",
        [(2, ("--job-name=withcomment",)), (3, ("--time=4",)), (4, ("-p", "gpu", "-c", "2"))],
    ),
    # sbatch: unrecognized option '--frobnicate=3' (the option parser's error)
    "directive-unknown-option": (
        "#!/bin/bash\n#SBATCH --frobnicate=3\necho hi\n",
        [(2, ("--frobnicate=3",))],
    ),
    # sbatch: error: Invalid directive found in batch script: job (the option parser's)
    "directive-unquoted-space": (
        "#!/bin/bash\n#SBATCH --job-name=my job\n#SBATCH --time=2\necho hi\n",
        [(2, ("--job-name=my", "job")), (3, ("--time=2",))],
    ),
    # timeout-job-output: to.sh
    "timeout-job-output-to": (
        "#!/bin/bash\n#SBATCH -J timeout-job --time=1\n"
        "trap 'echo \"$(date +%T) batch shell got TERM\"' TERM\n",
        [(2, ("-J", "timeout-job", "--time=1"))],
    ),
    # timeout-job-output: to-srun.sh
    "timeout-job-output-to-srun": (
        "#!/bin/bash\n#SBATCH -J timeout-srun --time=0:01:00 --signal=B:USR1@30\n"
        "trap 'echo \"$(date +%T) batch shell got USR1 (--signal=B:USR1@30)\"' USR1\n",
        [(2, ("-J", "timeout-srun", "--time=0:01:00", "--signal=B:USR1@30"))],
    ),
    # slurm-reference.md §1: "abc" is not a valid node count / Invalid --time
    "sbatch-bad-directive-nodes": (
        "#!/bin/bash\n#SBATCH --nodes=abc\nhostname\n",
        [(2, ("--nodes=abc",))],
    ),
    "sbatch-bad-directive-time": (
        "#!/bin/bash\n#SBATCH --time=xx\nhostname\n",
        [(2, ("--time=xx",))],
    ),
}


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_directives(name):
    text, expected = CAPTURES[name]
    assert directives(text) == expected


def test_script_fields():
    text = "#!/bin/bash -l\n#SBATCH -p gpu\nmodule load cuda/12.1\npython x.py"
    assert parse_script(text) == Script(
        shebang="/bin/bash -l",
        directives=(Directive(2, ("-p", "gpu")),),
        modules=(ModuleCommand(3, "load", ("cuda/12.1",)),),
        text=text,
    )


def test_wrap_script_is_slurms():  # sbatch-wrap-script.txt
    assert wrap_script("echo wrapped; hostname") == (
        "#!/bin/sh\n# This script was created by sbatch --wrap.\n\necho wrapped; hostname\n"
    )
    assert directives(wrap_script("echo x")) == []


# --- Slurm's errors ------------------------------------------------------------------


def test_no_shebang():  # sbatch-no-shebang.txt
    assert error_text("echo hi\n") == (
        "sbatch: error: This does not look like a batch script.  The first\n"
        "sbatch: error: line must start with #! followed by the path to an interpreter.\n"
        "sbatch: error: For instance: #!/bin/sh\n",
        1,
    )
    assert error_text(" #!/bin/sh\n")[1] == 1
    assert error_text("#")[1] == 1


def test_empty():  # sbatch-empty-stdin.txt
    assert error_text("") == ("sbatch: error: Batch script is empty!\n", 1)


def test_whitespace_only():  # sbatch.c: xstring_is_whitespace, on the text up to a NUL
    expected = ("sbatch: error: Batch script contains only whitespace!\n", 1)
    assert error_text(" \n\t\n") == expected
    assert error_text("\n\0#!/bin/sh\n") == expected


def test_nul_character():  # sbatch.c: contains_null_char, after the shebang check
    assert error_text("#!/bin/sh\necho a\0b\n") == (
        "sbatch: error: The Slurm controller does not allow scripts that\n"
        "sbatch: error: contain a NULL character '\\0'.\n",
        1,
    )


def test_dos_line_breaks():  # sbatch.c: contains_dos_linebreak
    assert error_text("#!/bin/sh\r\necho hi\r\n") == (
        "sbatch: error: Batch script contains DOS line breaks (\\r\\n)\n"
        "sbatch: error: instead of expected UNIX line breaks (\\n).\n",
        1,
    )


def test_unmatched_quote_is_fatal():  # opt.c get_argument: fatal(), so exit 1
    text = '#!/bin/sh\n#SBATCH --time=5 --job-name="my job\necho hi\n'
    assert error_text(text) == (
        'sbatch: fatal: stdin: line 2: Unmatched `"` in [ --job-name="my job]\n',
        1,
    )
    assert error_text("#!/bin/sh\n\n#SBATCH -J 'x\n", "sub/dir/job.sh") == (
        "sbatch: fatal: job.sh: line 3: Unmatched `'` in [ 'x]\n",  # -J was read already
        1,
    )
    # an escaped quote does not open one; a "#" inside an open quote is not a comment
    assert directives('#!/bin/sh\n#SBATCH -J a\\"b\n') == [(2, ("-J", 'a"b'))]
    assert error_text('#!/bin/sh\n#SBATCH -J "a # b\n')[0].endswith('[ "a # b]\n')
    # a quote after the comment starts is part of the comment
    assert directives('#!/bin/sh\n#SBATCH -J a # "b\n') == [(2, ("-J", "a"))]


def test_leading_colon_is_fatal():  # get_argument: the hetjob separator is CLI-only
    assert error_text("#!/bin/sh\n#SBATCH -N 1 :x\n") == (
        "sbatch: fatal: stdin: line 2: Unexpected `:` in [ :x]\n",
        1,
    )
    assert directives("#!/bin/sh\n#SBATCH --gres=gpu:1\n") == [(2, ("--gres=gpu:1",))]


def test_hetjob_lines_start_components():
    # Slurm starts a new job component at any #SBATCH line containing hetjob/packjob (any
    # case, in its comment too), and reads no option from that line.
    for line in ("#SBATCH hetjob", "#SBATCH packjob", "#SBATCH -J x # HetJob", "#SLURM hetjob"):
        for body in ("", "module load x\n"):  # with the grammar and without it
            text = f"#!/bin/sh\n#SBATCH -N1\n{line}\n#SBATCH -N2\n{body}true\n"
            script = parse_script(text)
            assert script.components == 2
            assert [(d.lineno, d.words, d.component) for d in script.directives] == [
                (2, ("-N1",), 0),
                (4, ("-N2",), 1),
            ]
            assert (script.words(0), script.words(1), script.words(2)) == (["-N1"], ["-N2"], [])
    # a trailing hetjob line makes an empty last component (the peer: J+0 and J+1)
    assert parse_script("#!/bin/sh\n#SBATCH -n1\n#SBATCH hetjob\ntrue\n").components == 2
    # after the header such a line is only a comment
    script = parse_script("#!/bin/sh\necho\n#SBATCH hetjob\n")
    assert (script.directives, script.components) == ((), 1)


# --- Slurm's tokenising rules --------------------------------------------------------


@pytest.mark.parametrize(
    "line, words",
    [
        ("#SBATCH --time=5", ("--time=5",)),
        ("#SBATCH--time=5", ("--time=5",)),  # no space needed after the magic word
        ("#SBATCHfoo", ("foo",)),  # so this is the word "foo" (an invalid directive)
        ("#SBATCH\t-N\t2  ", ("-N", "2")),
        ("#SBATCH --job-name='my job'", ("--job-name=my job",)),
        ('#SBATCH --comment="it\'s" -J x', ("--comment=it's", "-J", "x")),
        ("#SBATCH --comment=a\"b c\"d'e f'", ("--comment=ab cde f",)),
        ("#SBATCH --job-name=a#b -N 2", ("--job-name=a",)),  # "#" ends the line, even mid-word
        ("#SBATCH --comment=a\\#b", ("--comment=a#b",)),  # unless escaped
        ("#SBATCH --comment=a\\ b", ("--comment=a", "b")),  # an escaped blank still splits
        ('#SBATCH --comment="a\\"b"', ('--comment=a"b',)),
        ("#SBATCH -J x\\", ("-J", "x")),  # a trailing backslash escapes nothing
        ('#SBATCH --comment "" --time=5', ("--comment",)),  # an empty word ends the line
        ("#SBATCH", ()),
        ("#SBATCH   # only a comment", ()),
    ],
)
def test_directive_words(line, words):
    assert directives(f"#!/bin/sh\n{line}\n") == ([(2, words)] if words else [])


def test_what_stops_and_what_does_not():
    text = (
        "#!/bin/sh\n"
        "#!/bin/bash\n"  # 2: a comment
        "   \n"  # 3: blank
        "\v\f\r \n"  # 4: C whitespace only
        "#SBATCH -N 1\n"  # 5
        "    # indented comment\n"
        "#slurm -N 3\n"  # not a magic word: case matters
        "#SBATCH -n 2\n"  # 8
        "  true\n"  # an indented command stops parsing
        "#SBATCH -c 4\n"
    )
    assert directives(text) == [(5, ("-N", "1")), (8, ("-n", "2"))]
    # the last line needs no newline
    assert directives("#!/bin/sh\n#SBATCH -J last") == [(2, ("-J", "last"))]
    # a non-ASCII blank is not C whitespace: this line is a command
    assert directives("#!/bin/sh\n\u00a0# x\n#SBATCH -J x\n") == []


def test_deprecated_slurm_magic_is_a_directive():
    """Slurm 22.05 still reads "#SLURM" lines as #SBATCH ones (opt.c _opt_batch_script's
    magic_word2), and says so once (compat: directive-deprecated-slurm-magic)."""
    text = "#!/bin/sh\n#SLURM --mem=300\n#SBATCH -J x\n#SLURM-t 5\ntrue\n#SLURM -N 2\n"
    for read in (_read, _read_directives, lambda t, p: parse_script(t, p)):
        script = read(text, "job.sh")
        assert [(d.lineno, d.words) for d in script.directives] == [
            (2, ("--mem=300",)),
            (3, ("-J", "x")),
            (4, ("-t", "5")),
        ]
        assert script.deprecated_magic
    assert not parse_script("#!/bin/sh\n#SBATCH -J x\ntrue\n#SLURM -N 2\n").deprecated_magic
    assert parse_script("#!/bin/sh\n#SLURM\n").deprecated_magic  # a line with no words too


# --- module commands -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        ("module load gcc/12.2 cuda\n", [("load", ("gcc/12.2", "cuda"))]),
        ("module add gcc\n", [("load", ("gcc",))]),
        ("  module unload gcc\n", [("unload", ("gcc",))]),
        ("module rm gcc\n", [("unload", ("gcc",))]),
        ("module purge\n", [("purge", ())]),
        ("module use /opt/mods\n", [("use", ("/opt/mods",))]),
        ("module swap gcc intel\n", [("swap", ("gcc", "intel"))]),
        ("module switch gcc intel\n", [("swap", ("gcc", "intel"))]),
        ("module --force purge\n", [("purge", ())]),
        ("module -q load x\n", [("load", ("x",))]),
        ("module load \"a b\" 'c'\n", [("load", ("a b", "c"))]),
        ("module load a b # comment\n", [("load", ("a", "b"))]),
        ("module purge; module load x\n", [("purge", ())]),  # the first command only
        ("module load a && echo ok\n", [("load", ("a",))]),
        ("module load $MODS\n", [("load", ("$MODS",))]),  # not expanded
        ("module avail\nmodule list\nmodule\n", []),
        ("ml foo bar\n", [("load", ("foo", "bar"))]),
        ("ml -foo\n", [("unload", ("foo",))]),
        ("ml foo -bar baz\n", [("unload", ("bar",)), ("load", ("foo", "baz"))]),
        ("ml\nml avail\nml spider gcc\nml show x\n", []),  # list, and sub-commands
        ("ml purge\n", [("purge", ())]),
        ("ml swap gcc intel\n", [("swap", ("gcc", "intel"))]),
        ("ml load -x y\n", [("unload", ("x",)), ("load", ("y",))]),
        ("ml -t foo\n", [("load", ("foo",))]),  # -t is Lmod's --terse, not "unload t"
        ("ml --bogus foo\n", []),  # Lmod refuses it
        ("ml;\n", []),
        ("echo module load x\nmodulefile load x\nml.py\nmodule=3\n", []),
    ],
)
def test_module_commands(body, expected):
    assert modules(body) == expected


def test_module_line_numbers_and_body_only():
    text = "#!/bin/sh\n#SBATCH -N 1\nmodule purge\nml gcc\n#SBATCH -N 2\necho\n  ml -gcc\n"
    script = parse_script(text)
    assert script.directives == (Directive(2, ("-N", "1")),)
    assert script.modules == (
        ModuleCommand(3, "purge", ()),
        ModuleCommand(4, "load", ("gcc",)),
        ModuleCommand(7, "unload", ("gcc",)),
    )


# --- properties ----------------------------------------------------------------------

SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,%@+"
names = st.text(SAFE.replace(":", "").replace("-", ""), min_size=1, max_size=12)
values = st.text(SAFE + " #'", min_size=1, max_size=20).filter(lambda v: v[0] != ":")


@st.composite
def option_words(draw):
    """(words as Slurm should see them, the same words as written in a directive)."""
    words, written = [], []
    for _ in range(draw(st.integers(1, 5))):
        name, value = draw(names), draw(values)
        form = draw(st.sampled_from(["long=", "long", "short", "shortjoined"]))
        if form == "long=":
            word = f"--{name}={value}"
            words.append(word)
            written.append(_quote(word, draw))
        else:
            flag = f"--{name}" if form == "long" else f"-{name[0]}"
            if form == "shortjoined":
                words.append(flag + value)
                written.append(_quote(flag + value, draw))
                continue
            words += [flag, value]
            written += [flag, _quote(value, draw)]
    return words, written


def _quote(word, draw):
    """The word quoted as a user would: whole, or from "=" on; double quotes unless the
    word holds one already."""
    if not any(c in word for c in " #'") and not draw(st.booleans()):
        return word
    quote = '"' if "'" in word or draw(st.booleans()) else "'"
    head, eq, tail = word.partition("=")
    if eq and not any(c in head for c in " #'") and draw(st.booleans()):
        return f"{head}={quote}{tail}{quote}"
    return f"{quote}{word}{quote}"


@given(
    option_words(),
    st.lists(st.sampled_from([" ", "\t", "  "]), min_size=6, max_size=6),
    st.sampled_from(["", "  # a comment", "\t#", " #SBATCH -J no"]),
)
def test_directive_round_trip(case, gaps, comment):
    words, written = case
    assume(not any("hetjob" in w.lower() or "packjob" in w.lower() for w in words))
    assume("hetjob" not in comment.lower() and "packjob" not in comment.lower())
    line = "#SBATCH" + "".join(gaps[i % 6] + w for i, w in enumerate(written)) + comment
    assert directives(f"#!/bin/bash\n{line}\necho\n") == [(2, tuple(words))]


script_chars = st.sampled_from(
    list("#!SBATCH -\"'\\:=\t\n\r\v\f\0ml odue;&|()") + ["module ", "ml ", "#SBATCH ", "\u00a0"]
)
script_like = st.lists(script_chars, max_size=60).map("".join)


@settings(max_examples=300)
@given(st.one_of(st.text(), script_like, script_like.map(lambda s: "#!/bin/sh\n" + s)))
def test_any_text_parses_or_raises_slurm_error(text):
    try:
        script = parse_script(text)
    except SlurmError as e:
        assert e.exit_code == 1 and e.render("sbatch")
    else:
        assert script.text == text


@settings(max_examples=300, deadline=None)  # the first example builds the parser
@given(st.lists(st.sampled_from(list("ab -\"'\\:#\t\v")), max_size=25).map("".join))
def test_word_scanner_is_the_grammar(tail):
    """The fast word scanner finds exactly the tokens Lark's parser finds for the same
    start rule of the grammar."""
    lark, _ = _parser()
    directive_scanner, module_scanner = _directive_scanner(), _module_scanner()
    for start, scanner in [
        ("directive_words", directive_scanner),
        ("module_words", module_scanner),
    ]:
        tree = lark.parse(tail, start=start)
        kept = [str(t) for t in tree.children]  # Lark drops the "_" terminals
        scanned, pos = [], 0
        while pos < len(tail):
            match = scanner.match(tail, pos)
            if not match.lastgroup.startswith("_"):
                scanned.append(match.group())
            pos = match.end()
        assert scanned == kept


def test_lark_is_never_imported_and_the_parser_only_to_parse():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, slurmsky.parse.script as s; m = lambda: sorted(m for m in ('lark', "
        "'slurmsky.parse._sbatch_parser') if m in sys.modules); a = m();"
        " s.parse_script('#!/bin/sh\\n#SBATCH -t 5\\ntrue\\n'); b = m();"
        " s.parse_script('#!/bin/sh\\n#SBATCH -t 5\\nml x\\n'); print(a, b, m())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "[] [] ['slurmsky.parse._sbatch_parser']\n"


def test_generated_parser_is_the_grammar():
    """slurmsky/parse/_sbatch_parser.py and _sbatch_terminals.py are exactly what
    grammar/generate.py writes from grammar/sbatch.lark with the installed Lark: they
    cannot drift apart."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location("generate", root / "grammar" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for path, text in generate.generate().items():
        assert path.read_text() == text, f"{path.name} is stale: run `python grammar/generate.py`"


near_marks = st.sampled_from(
    list("#!SBATCHPU ml odue\t\n\r\v\fx;")
    + ["#SBATC", "#SLUR", "#PB", "#BSU", "x module", "# ml", "\u00a0"]
)


@settings(max_examples=300, deadline=None)  # the first example builds the parser
@given(st.lists(near_marks, max_size=40).map(lambda s: "#!/bin/sh\n" + "".join(s)))
def test_scripts_without_marks_read_as_the_grammar_reads_them(text):
    """parse_script skips the grammar for a script none of whose lines could be a
    directive, a #PBS/#BSUB line or a module command: the grammar finds nothing there."""
    assume(not _MARKS.search(text))

    def outcome():
        try:
            return parse_script(text)
        except SlurmError as e:
            return e.lines

    with mock.patch.object(script_module, "_MARKS", re.compile("")):  # always the grammar
        expected = outcome()
    assert outcome() == expected


near_directives = st.sampled_from(
    [
        "#SBATCH",
        "#SBATCH -t 5",
        "#SLURM",
        "#SLURM -N 2",
        "#SLUR",
        "#SBATCH --x='a b'",
        "#SBATCH hetjob",
        "#SBATC",
        '#SBATCH"',
        "echo",
        "#",
        "# c",
        " ",
        "\t",
        "\v",
        "\f",
        "\r",
        "\n",
        "\n",
        "\n",
        ":",
        "'",
        "\\",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)  # the first example builds the parser
@given(st.lists(near_directives, max_size=40).map(lambda s: "#!/bin/sh\n" + "".join(s)))
def test_scripts_with_only_directives_read_as_the_grammar_reads_them(text):
    """parse_script reads a script with no #PBS/#BSUB line and no module command without
    the parser: the same directives, or the same error, as the grammar."""
    assume(not script_module._PARSER_MARKS.search(text))

    def outcome(read):
        try:
            return read(text, "job.sh")
        except SlurmError as e:
            return e.lines

    assert outcome(_read_directives) == outcome(_read)
