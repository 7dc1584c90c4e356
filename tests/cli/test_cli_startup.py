"""`sr-tf`'s first answers: help and argument errors without TensorFlow, one-line errors, help
texts that name only real flags."""

from __future__ import annotations

import argparse
import re
import time

import pytest
from cli_helpers import REPO, run_cli

from sr_tf.cli import SUBCOMMANDS, build_parser

VERBS = sorted(SUBCOMMANDS)


def _verb_parser(verb: str) -> argparse.ArgumentParser:
    parser = build_parser([verb])
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[verb]


@pytest.mark.parametrize("argv", [["--help"]] + [[verb, "--help"] for verb in VERBS], ids=lambda a: " ".join(a))
def test_help_answers_without_importing_heavy_modules(argv):
    start = time.monotonic()
    status, heavy, out, err = run_cli(argv)
    seconds = time.monotonic() - start
    assert status == 0, err
    assert heavy == [], f"`sr-tf {' '.join(argv)}` imported {heavy}"
    assert "usage: sr-tf" in out and err == ""
    assert seconds < 10  # a generous bound for a loaded CI machine; benchmarks/cli_startup.py measures it


ARGUMENT_ERRORS = [
    ["nonsense"],
    ["upscale"],
    ["upscale", "a.png", "-o", "out", "--tile", "-1"],
    ["upscale", "a.png", "-o", "out", "--bogus"],
    ["predict", "in.png", "out.png"],
    ["predict", "in.png", "out.gif", "--model", "m"],
    ["predict", "in.png", "out.png", "--model", "m", "--server", "ftp://x"],
    ["batch-predict", "--model", "m", "--input", "i"],
    ["batch-predict", "--model", "m", "--input", "i", "--output", "o", "--batch-size", "0"],
    ["evaluate", "--data", "x"],
    ["evaluate", "--data", "x", "--out", "o", "--degradation", "nope"],
    ["export", "--model", "m"],
    ["export", "--model", "m", "--out", "o", "--tile", "x"],
    ["degrade", "a.png", "b.png", "--scale", "0"],
    ["make-tfrecords"],
    ["train", "--data", "d", "--out", "o"],
    ["interpolate", "--psnr", "a.keras", "--gan", "b.keras", "--out", "c.h5"],
    ["vertex-job", "--project", "p"],
    ["serve", "--rest-port", "eighty"],
    ["serve"],
]


@pytest.mark.parametrize("argv", ARGUMENT_ERRORS, ids=lambda a: " ".join(a) or "no arguments")
def test_argument_errors_are_one_line_without_heavy_imports(argv):
    status, heavy, out, err = run_cli(argv)
    assert status in (1, 2), (status, err)
    assert heavy == [], f"`sr-tf {' '.join(argv)}` imported {heavy} to report: {err}"
    assert "Traceback" not in err
    problems = [line for line in err.splitlines() if not line.startswith("usage:") and line.startswith(("sr-tf", "error"))]
    assert len(problems) == 1, err


def test_unknown_config_key_suggests_the_nearest_and_prints_no_traceback(tmp_path):
    status, _, _, err = run_cli(["train", "--config", "srresnet_small", "--data", str(tmp_path), "--out",
                                 str(tmp_path / "run"), "--set", "batch_size=2"])
    assert status == 2
    assert err.strip().splitlines() == [
        "sr-tf train: Unknown config key 'batch_size'; did you mean 'data.batch_size'?"]


def test_verbose_shows_the_traceback_of_a_user_error():
    argv = ["predict", "in.png", "out.gif", "--model", "m"]
    assert "Traceback" not in run_cli(argv)[3]
    status, _, _, err = run_cli(["--verbose", *argv])
    assert status == "exception" and "Traceback" in err and "UsageError: OUTPUT must end in one of" in err


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9]")


def _beam_flags() -> set[str]:
    from sr_tf.cli.batch_predict import _beam_actions

    return {s for a in _beam_actions() for s in a.option_strings}


def test_help_texts_name_only_flags_that_exist():
    """Every `--flag` a help text mentions is an option of some verb (or Beam's, for batch-predict)."""
    parsers = {verb: _verb_parser(verb) for verb in VERBS}
    known = {s for p in parsers.values() for s in p._option_string_actions} | {"--help", "--verbose"}
    missing = {}
    for verb, parser in parsers.items():
        # leave out another tool's commands in backticks, e.g. `pip wheel --no-deps`
        text = re.sub(r"`(?!sr-tf)[a-z][^`]*`", "", parser.format_help())
        named = set(FLAG.findall(text))
        allowed = known | (_beam_flags() if verb == "batch-predict" else set())
        if named - allowed:
            missing[verb] = sorted(named - allowed)
    assert missing == {}


def test_readme_commands_name_only_flags_of_their_verb():
    """`sr-tf VERB ... --flag` lines in the README use flags VERB has (Beam's pass through batch-predict)."""
    text = (REPO / "README.md").read_text()
    commands = re.findall(r"^\s*(?:python3 -m pip install \S+ && )?sr-tf ([a-z-]+)(.*(?:\\\n.*)*)$", text, re.M)
    assert len(commands) >= 8
    missing = []
    for verb, rest in commands:
        if verb not in SUBCOMMANDS:
            continue  # a verb another branch adds (e.g. `sr-tf models`)
        options = set(_verb_parser(verb)._option_string_actions) | (_beam_flags() if verb == "batch-predict" else set())
        missing += [f"sr-tf {verb} {flag}" for flag in FLAG.findall(rest) if flag not in options]
    assert missing == []


def test_every_verb_shares_one_tile_default():
    from sr_tf.cli.options import EVALUATE_TILE, TILE, TILE_PAD

    tiled = {}
    for verb in VERBS:
        actions = _verb_parser(verb)._option_string_actions
        if "--tile" in actions:
            tiled[verb] = (actions["--tile"].default, actions["--tile-pad"].default)
    assert set(tiled) >= {"upscale", "evaluate", "export", "batch-predict"}
    assert tiled.pop("evaluate") == (EVALUATE_TILE, TILE_PAD)  # the stated exception: test sets run whole
    assert set(tiled.values()) == {(TILE, TILE_PAD)}, tiled


@pytest.mark.parametrize("verb", ["upscale", "upscale-video", "evaluate", "export", "batch-predict", "degrade", "train"])
def test_compute_verbs_take_threads(verb):
    assert "--threads" in _verb_parser(verb)._option_string_actions


@pytest.mark.parametrize("verb", ["upscale", "upscale-video", "evaluate", "batch-predict", "degrade", "train",
                                  "make-tfrecords"])
def test_long_running_verbs_can_hide_their_progress_bar(verb):
    assert "--no-progress" in _verb_parser(verb)._option_string_actions
