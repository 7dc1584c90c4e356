"""Library errors speak the library's language: no error raised below `sr_tf.cli` names a `--flag`.

A library user never passed a flag; `sr-tf` itself turns parameter names into its flags
(`sr_tf.cli.options.flag_names`), tested here through a real command.
"""

import ast
import re
from pathlib import Path

from tests.cli.cli_helpers import run_cli

PACKAGE = Path(__file__).resolve().parents[1] / "sr_tf"
FLAG = re.compile(r"(?:^|[\s(`'\"])--[a-z][a-z0-9_-]*")


def _raised_texts(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield node.lineno, part.value


def test_no_library_error_names_a_flag():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        # The server's errors name TF Serving's flags it mirrors; those are its interface.
        if {"cli", "serving"} & set(path.relative_to(PACKAGE).parts):
            continue
        for line, text in _raised_texts(ast.parse(path.read_text(), str(path))):
            if FLAG.search(text):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert not found, "library errors naming CLI flags:\n" + "\n".join(found)


def test_the_cli_names_its_flags_for_a_library_error(tmp_path):
    status, _, _, stderr = run_cli(["batch-predict", "--model", "realesrgan-x4plus",
                                    "--input", str(tmp_path / "none-*.png"), "--output", str(tmp_path / "out")])
    assert status == 2, stderr
    assert "--input names no images files" in stderr and "--input='" in stderr, stderr
