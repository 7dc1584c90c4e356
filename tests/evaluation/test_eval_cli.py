import json

from sr_tf.cli import SUBCOMMANDS, main


def test_evaluate_is_registered():
    assert SUBCOMMANDS["evaluate"] == "sr_tf.cli.evaluate"


def test_evaluate_end_to_end(hr_folder, tiny_models, tmp_path, capsys):
    out = tmp_path / "report"
    a, b = (str(p) for p in tiny_models)
    code = main([
        "evaluate", "--models", a, b, "--data", str(hr_folder), "--scale", "2", "--out", str(out),
        "--crop-size", "16", "--interpolate", a, b, "--alphas", "0,0.5,1", "--tile", "8", "--no-progress",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "bicubic" in printed and "tiny1" in printed and "results.json" in printed
    results = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in results["methods"]] == ["bicubic", "tiny1", "tiny2"]
    assert [im["name"] for im in results["images"]] == ["img0", "img1"]
    assert results["settings"]["tile"] == 8
    curve = results["interpolation_curve"]
    assert [p["alpha"] for p in curve] == [0.0, 0.5, 1.0]
    # alpha 0 and 1 are the two models themselves (same images, same tiling).
    assert curve[0]["psnr_y"] == results["mean"]["tiny1"]["psnr_y"]
    assert curve[-1]["ssim_y"] == results["mean"]["tiny2"]["ssim_y"]
    for name in ("results.md", "report.html", "curve.png", "images/000-img0/side_by_side.png",
                 "images/001-img1/overview.png"):
        assert (out / name).is_file(), name


def test_evaluate_reports_bad_input_with_exit_code(tmp_path, capsys, hr_folder):
    code = main(["evaluate", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "missing" in capsys.readouterr().err
    code = main(["evaluate", "--data", str(hr_folder), "--out", str(tmp_path / "r"), "--alphas", "0,2",
                 "--interpolate", "x.keras", "y.keras"])
    assert code == 2
    assert "alphas" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written when the options are wrong


def test_unreadable_images_are_skipped_and_named(hr_folder, tmp_path, capsys):
    (hr_folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "report"
    code = main(["evaluate", "--data", str(hr_folder), "--scale", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    assert "broken.png" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert [im["name"] for im in results["images"]] == ["img0", "img1"]
    assert "broken.png" in results["settings"]["skipped"][0]
