"""`sr-tf batch-predict` / `sr-tf vertex-job`: arguments, Beam options, exit codes; same-shape batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from batch_helpers import png_bytes, random_image

from sr_tf.batch import BatchConfig
from sr_tf.batch.predict import PredictDoFn
from sr_tf.batch.sources import Instance
from sr_tf.cli import build_parser, main
from sr_tf.cli.batch_predict import beam_arguments


def _folder(tmp_path, n=3):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        (src / f"{i}.png").write_bytes(png_bytes(random_image(i, (5, 5, 3))))
    return src


def test_cli_runs_prints_summary_and_passes_beam_options(tmp_path, savedmodel, capsys):
    src = _folder(tmp_path)
    (src / "broken.png").write_bytes(b"nope")
    argv = ["batch-predict", "--model", str(savedmodel), "--input", str(src), "--output", str(tmp_path / "o"),
            "--runner", "DirectRunner", "--direct_num_workers=1", "--experiments", "a", "--experiments=b"]
    args, unknown = build_parser(argv).parse_known_args(argv)
    assert beam_arguments(unknown) == [
        "--runner=DirectRunner", "--direct_num_workers=1", "--experiments=a", "--experiments=b"]
    assert main(argv) == 1  # one input failed
    assert capsys.readouterr().out.strip().splitlines()[-1] == "3 succeeded, 1 failed"
    (src / "broken.png").unlink()
    assert main(argv[:7]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-2:] == [
        "3 outputs existed already and were not recomputed", "3 succeeded, 0 failed"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "nothing-like-this"], "is neither a catalogue model"),
        (["--model", "missing.keras"], "no such file"),
        (["--input", "/nonexistent/dir"], "matches no file"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1. Received: --batch-size=0"),
        (["--max-pixels", "-5"], "--max-pixels must be an integer >= 1"),
    ],
)
def test_bad_arguments_give_clear_errors(tmp_path, savedmodel, capsys, extra, message):
    src = _folder(tmp_path, 1)
    argv = ["batch-predict", "--model", str(savedmodel), "--input", str(src), "--output", str(tmp_path / "o")] + extra
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_directory_without_a_savedmodel_is_refused(tmp_path, capsys):
    src = _folder(tmp_path, 1)
    (tmp_path / "empty").mkdir()
    assert main(["batch-predict", "--model", str(tmp_path / "empty"), "--input", str(src), "--output", "o"]) == 2
    assert "without saved_model.pb" in capsys.readouterr().err


def test_an_option_neither_ours_nor_beams_is_refused(tmp_path, capsys):
    argv = ["batch-predict", "--model", "m", "--input", "i", "--output", str(tmp_path / "o"), "--runner", "DirectRunner"]
    assert main(argv + ["--no_such_beam_option", "1"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no_such_beam_option 1" in err and len(err.strip().splitlines()) == 1
    assert main(argv[:-1]) == 2  # --runner without its value
    assert "--runner" in capsys.readouterr().err


def test_unknown_format_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["batch-predict", "--model", "m", "--input", "i", "--output", "o", "--instances-format", "csv"])
    assert info.value.code == 2 and "invalid choice: 'csv'" in capsys.readouterr().err


class _CountingPredictor:
    """Stands in for the model: records batch shapes; output = input repeated 2x (whole numbers)."""

    def __init__(self):
        self.shapes = []

    def __call__(self, pixels):
        self.shapes.append(pixels.shape)
        return np.repeat(np.repeat(pixels, 2, axis=1), 2, axis=2)


def test_dofn_batches_same_shape_instances_together(tmp_path):
    config = BatchConfig(model="m", input="i", output=str(tmp_path), batch_size=4, max_batch_pixels=100)
    fn = PredictDoFn(config, max_pixels=10_000)
    fn._predictor, fn._tmpdir, fn._writes, fn._kill_after = _CountingPredictor(), str(tmp_path), 0, 0
    fn.start_bundle()
    outcomes = []
    shapes = [(3, 4)] * 5 + [(2, 2)] * 3 + [(6, 9)] * 2  # 2 x 54 pixels > max_batch_pixels: one at a time
    for i, (h, w) in enumerate(shapes):
        value = np.full((h, w, 3), i, float).tolist()
        inst = Instance(f"k{i}", "tensor", value, str(tmp_path / f"{i}.json"), value=value)
        outcomes += list(fn.process(inst))
    too_big = np.zeros((101, 100, 3)).tolist()
    outcomes += list(fn.process(Instance("big", "tensor", "big", str(tmp_path / "big.json"), value=too_big)))
    outcomes += [wv.value for wv in fn.finish_bundle()]
    assert sorted(s[:3] for s in fn._predictor.shapes) == [(1, 3, 4), (1, 6, 9), (1, 6, 9), (3, 2, 2), (4, 3, 4)]
    (error,) = [o for o in outcomes if not o.ok]
    assert "10100 pixels, over the limit of 10000" in error.line and not (tmp_path / "big.json").exists()
    assert len(outcomes) == 11 and sum(o.ok for o in outcomes) == 10
    for i, (h, w) in enumerate(shapes):  # each instance got its own rows back, not a neighbour's
        pred = np.array(json.loads((tmp_path / f"{i}.json").read_text()))
        assert pred.shape == (2 * h, 2 * w, 3) and np.all(pred == i)


def test_vertex_job_requests_are_built_offline(capsys):
    from sr_tf.batch.vertex import VertexJobConfig, batch_prediction_request, model_upload_request

    config = VertexJobConfig(project="p", region="europe-west4", model_uri="gs://b/models/tiny/1",
                             input_uris=("gs://b/in/instances.jsonl",), output_prefix="gs://b/out",
                             max_replica_count=4, accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1)
    url, body = model_upload_request(config)
    assert url == "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/models:upload"
    assert body["model"]["artifactUri"] == "gs://b/models/tiny/1/"
    assert body["model"]["containerSpec"]["imageUri"].startswith("europe-docker.pkg.dev/vertex-ai/prediction/tf2-gpu.")
    url, job = batch_prediction_request(config, "123")
    assert url.endswith("/locations/europe-west4/batchPredictionJobs")
    assert job["model"] == "projects/p/locations/europe-west4/models/123"
    assert job["inputConfig"] == {"instancesFormat": "jsonl", "gcsSource": {"uris": ["gs://b/in/instances.jsonl"]}}
    assert job["outputConfig"]["gcsDestination"]["outputUriPrefix"] == "gs://b/out"
    assert job["dedicatedResources"]["machineSpec"] == {"machineType": "n1-standard-4",
                                                        "acceleratorType": "NVIDIA_TESLA_T4", "acceleratorCount": 1}
    assert job["dedicatedResources"]["maxReplicaCount"] == 4
    with pytest.raises(ValueError, match="must be a gs:// URI"):
        VertexJobConfig(project="p", region="us-central1", model_uri="/local/model", input_uris=("gs://b/x",),
                        output_prefix="gs://b/o")

    assert main(["vertex-job", "--project", "p", "--region", "us-central1", "--model", "gs://b/m/1",
                 "--input", "gs://b/list.txt", "--output", "gs://b/o", "--instances-format", "file-list"]) == 0
    captured = capsys.readouterr()
    assert '"instancesFormat": "file-list"' in captured.out and "curl -X POST" in captured.out
    assert "b64" in captured.err  # the warning about what Vertex sends for file lists
    assert main(["vertex-job", "--project", "p", "--region", "mars", "--model", "gs://b/m/1",
                 "--input", "gs://b/x.jsonl", "--output", "gs://b/o"]) == 2


class _PickyPredictor(_CountingPredictor):
    def __call__(self, pixels):
        if np.any(pixels == 13):
            raise ValueError("cannot handle 13\nsecond line")
        return super().__call__(pixels)


def test_a_failing_batch_is_retried_one_by_one_so_only_the_culprit_fails(tmp_path):
    fn = PredictDoFn(BatchConfig(model="m", input="i", output=str(tmp_path), batch_size=4), max_pixels=10_000)
    fn._predictor, fn._tmpdir, fn._writes, fn._kill_after = _PickyPredictor(), str(tmp_path), 0, 0
    fn.start_bundle()
    outcomes = []
    for i in (11, 12, 13, 14):
        value = np.full((2, 2, 3), i, float).tolist()
        outcomes += list(fn.process(Instance(f"k{i}", "tensor", i, str(tmp_path / f"{i}.json"), value=value)))
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert json.loads(outcomes[2].line)["error"] == {"status": "INTERNAL", "message": "model failed: cannot handle 13"}
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["11.json", "12.json", "14.json"]


def test_bytes_default_copy_for_vertex_file_lists(tmp_path, savedmodel, capsys):
    import tensorflow as tf

    dst = tmp_path / "bytes" / "1"
    assert main(["vertex-job", "--project", "p", "--region", "us-central1", "--model", "gs://b/bytes/1",
                 "--input", "gs://b/list.txt", "--output", "gs://b/o", "--instances-format", "file-list",
                 "--write-bytes-model", str(savedmodel), str(dst)]) == 0
    assert "wrote" in capsys.readouterr().err
    original, copy = tf.saved_model.load(str(savedmodel)), tf.saved_model.load(str(dst))
    default = copy.signatures["serving_default"]
    assert default.structured_input_signature[1]["image_bytes"].dtype == tf.string
    png = tf.constant([png_bytes(random_image(4, (5, 7, 3)))])
    got = default(image_bytes=png)["upscaled_bytes"].numpy()[0]
    assert got == original.signatures["encoded_image"](image_bytes=png)["upscaled_bytes"].numpy()[0]
    pixels = tf.constant(random_image(5, (1, 3, 4, 3)).astype(np.float32))
    np.testing.assert_array_equal(copy.signatures["pixels"](images=pixels)["upscaled"].numpy(),
                                  original.signatures["serving_default"](images=pixels)["upscaled"].numpy())


def test_progress_bar_counts_each_instance_as_it_finishes(tmp_path, savedmodel, capfd):
    src = _folder(tmp_path, 3)
    (src / "broken.png").write_bytes(b"nope")
    assert main(["batch-predict", "--model", str(savedmodel), "--input", str(src), "--output", str(tmp_path / "o")]) == 1
    err = capfd.readouterr().err
    assert "instances: 100%" in err and "4/4" in err  # failures count as finished too
    assert main(["batch-predict", "--model", str(savedmodel), "--input", str(src), "--output", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    assert "instances:" not in capfd.readouterr().err
