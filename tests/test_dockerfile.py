"""The Dockerfile parser, variable substitution and .dockerignore matching:
pure functions over text, checked against docker's documented rules."""

import pytest

from diyc import dockerfile as df
from diyc.dockerignore import load


def parse(text):
    return df.parse(text).instructions


def test_comments_continuations_and_case():
    ins = parse("""\
# a comment
from busybox AS Base
RUN echo a \\
  # a comment inside a continuation is dropped
    && echo b

Run   echo c
""")
    assert [(i.cmd, i.line) for i in ins] == [("FROM", 2), ("RUN", 3), ("RUN", 7)]
    assert ins[1].args == "echo a     && echo b"
    assert ins[2].args == "echo c"


def test_escape_directive_and_syntax():
    parsed = df.parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo x\n")
    assert parsed.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert parsed.instructions[1].args == "dir c:\\   && echo x"
    # a directive after the first instruction is only a comment
    parsed = df.parse("FROM busybox\n# escape=`\nRUN a \\\n b\n")
    assert parsed.escape == "\\" and parsed.instructions[1].args == "a  b"


def test_exec_and_shell_forms_and_flags():
    ins = parse('FROM --platform=linux/amd64 busybox\nCMD ["sh", "-c", "x"]\nENTRYPOINT echo hi\n'
                'COPY --from=build --chown=1:2 --chmod=0755 a b /c/\nRUN [not json\n')
    assert ins[0].flags == {"platform": "linux/amd64"} and ins[0].args == "busybox"
    assert ins[1].json == ["sh", "-c", "x"]
    assert ins[2].json is None
    assert ins[3].flags == {"from": "build", "chown": "1:2", "chmod": "0755"} and ins[3].args == "a b /c/"
    assert ins[4].json is None  # not valid JSON: the shell form


def test_heredocs():
    ins = parse("FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\n"
                "COPY <<-A <<'B' /dir/\n\tfirst $X\n\tA\nsecond $X\nB\nCMD true\n")
    assert ins[1].heredocs == [("EOF", "echo one\necho two\n", True)]
    assert ins[2].heredocs == [("A", "first $X\n", True), ("B", "second $X\n", False)]
    assert ins[3].cmd == "CMD" and ins[3].line == 11


@pytest.mark.parametrize("text,error", [
    ("FROM busybox\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
    ("ENV A=1\nFROM busybox\n", "Dockerfile:1: ENV before the first FROM"),
    ("ARG X\n", "no FROM instruction"),
    ("FROM busybox\nRUN <<EOF\nno end\n", "Dockerfile:2: unterminated heredoc <<EOF"),
    ("FROM busybox\nCOPY --nope a b\n", "Dockerfile:2: unknown flag for COPY: --nope"),
    ("FROM busybox\nONBUILD FROM x\n", "Dockerfile:2: invalid ONBUILD trigger"),
    ("# escape=x\nFROM busybox\n", "invalid escape token"),
    ("FROM busybox\nWORKDIR\n", "Dockerfile:2: WORKDIR requires at least one argument"),
])
def test_errors_name_the_line(text, error):
    with pytest.raises(df.DockerfileError) as e:
        df.parse(text)
    assert error in str(e.value)
    assert "\n" not in str(e.value)


def test_substitution_rules():
    env = {"A": "a", "EMPTY": "", "SP": "x y"}
    e = lambda s: df.expand(s, env)  # noqa: E731
    assert e("$A") == "a" and e("${A}b") == "ab" and e("pre-$A-post") == "pre-a-post"
    assert e("${UNSET:-dflt}") == "dflt" and e("${EMPTY:-dflt}") == "dflt" and e("${EMPTY-dflt}") == ""
    assert e("${A:+alt}") == "alt" and e("${UNSET:+alt}") == "" and e("${EMPTY+alt}") == "alt"
    assert e("${UNSET:-${A}z}") == "az"
    assert e("\\$A") == "$A" and e("'$A'") == "$A" and e('"$A"') == "a" and e("$") == "$"
    assert e('"${SP}"') == "x y" and e("$SP") == "x y"  # one word: not split
    assert df.expand_words("$EMPTY", env) == [] and df.expand_words('"$EMPTY"', env) == [""]
    with pytest.raises(df.DockerfileError, match="UNSET: needed"):
        e("${UNSET:?needed}")
    assert df.expand_words("$SP 'q w' \"$A b\"", env) == ["x", "y", "q w", "a b"]
    used = set()
    df.expand("${A} $B", env, used=used)
    assert used == {"A", "B"}


def test_env_and_label_key_values():
    ins = parse('FROM b\nENV A=1 B="two words" C=$A\nENV LEGACY value with spaces\n'
                'LABEL "com.x"="y z" v=1\n')
    env = {"A": "old"}
    assert df.key_values(ins[1], env) == [("A", "1"), ("B", "two words"), ("C", "old")]
    assert df.key_values(ins[2], env) == [("LEGACY", "value with spaces")]
    assert df.key_values(ins[3], env) == [("com.x", "y z"), ("v", "1")]


def test_durations():
    assert df.parse_duration("30s") == 30 * 10**9
    assert df.parse_duration("1m30s") == 90 * 10**9
    assert df.parse_duration("500ms") == 5 * 10**8
    with pytest.raises(df.DockerfileError):
        df.parse_duration("ten")


def test_dockerignore_rules():
    m = load("# comment\n*.log\n!keep.log\n/build\ndocs/**/*.tmp\n**/cache\n!**/cache/keep\n"
             "a?c\n[xy].txt\n")
    assert m.excluded("debug.log") and not m.excluded("keep.log")
    assert not m.excluded("sub/debug.log")  # * does not cross /
    assert m.excluded("build") and m.excluded("build/out/bin")  # a dir excludes what is in it
    assert m.excluded("docs/a/b/x.tmp") and m.excluded("docs/x.tmp") and not m.excluded("docs/x.md")
    assert m.excluded("cache/f") and m.excluded("deep/er/cache/f")
    assert not m.excluded("deep/cache/keep")
    assert m.excluded("abc") and not m.excluded("abbc")
    assert m.excluded("x.txt") and not m.excluded("z.txt")
    assert m.has_exceptions
    assert not load("").excluded("anything")
