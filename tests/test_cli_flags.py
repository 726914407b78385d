"""The console commands' absl flags (``jpose.cli_flags``): re-entrant parsing, one error line."""

import pytest
from absl import flags

from jpose import cli_flags
from jpose.inference import cli as inference_cli
from jpose.inference import evaluate


def _define(fv):
    flags.DEFINE_string("name", None, "a string", flag_values=fv)
    flags.DEFINE_integer("count", 3, "an integer", flag_values=fv)
    flags.DEFINE_bool("loud", False, "a boolean", flag_values=fv)


def test_both_spellings_and_fresh_defaults_on_every_call():
    a = cli_flags.parse("prog", _define, ["--name", "x", "--count=5", "--loud"], description="d")
    assert (a.name, a.count, a.loud) == ("x", 5, True)
    b = cli_flags.parse("prog", _define, ["--name=y"], description="d")
    assert (b.name, b.count, b.loud) == ("y", 3, False)  # nothing kept from the first call
    assert "name" not in flags.FLAGS  # the global FLAGS of the training commands is untouched


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--bogus=1"], "Unknown command line flag 'bogus'"),
        (["--count=many"], "count"),
        (["--name=x", "stray"], "unexpected arguments: stray"),
    ],
)
def test_a_bad_command_line_is_one_error_line_and_status_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_flags.parse("prog", _define, argv, description="d")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("prog: error: ") and expected in err


def test_pair_values():
    assert cli_flags.pair("p", "image_size", "640x480") == (640.0, 480.0)
    assert cli_flags.pair("p", "image_size", None) is None
    with pytest.raises(SystemExit):
        cli_flags.pair("p", "image_size", "640")


@pytest.mark.parametrize("main, prog", [(inference_cli.main, "jpose"), (evaluate.main, None)])
def test_commands_list_their_flags_and_refuse_two_model_sources(main, prog, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--workdir" in out and "--pretrained" in out
    args = ["--workdir", str(tmp_path), "--pretrained=lifter_cmu"]
    if prog == "jpose":
        args += ["--input=a.json", "--output=b.npz"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Exactly one of (workdir, pretrained)" in err
