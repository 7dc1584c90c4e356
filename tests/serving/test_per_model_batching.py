"""Per-model batching parameters, as TF Serving's `--enable_per_model_batching_parameters` reads them:
`VERSION/batching_params.pbtxt` (bundle_factory_util.cc `GetPerModelBatchingParams`), written by
`sr-tf export --batching FIELD=VALUE`, used only with both --enable_batching and the flag."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sr_tf.cli import build_parser, main
from sr_tf.export import (
    BATCHING_PARAMS_FILE,
    ExportConfig,
    batching_parameters_text,
)
from sr_tf.serving.batching import BatchingConfig
from sr_tf.serving.models import ModelConfig, ModelManager
from sr_tf.serving.protos import parse_text
from sr_tf.serving.service import PredictionCore
from tests.serving.serving_helpers import copy_version, random_pixels

# The server-wide batching: pairs of requests, waiting long enough that a pair always forms.
SERVER = BatchingConfig(enabled=True, max_batch_size=2, batch_timeout_micros=10_000_000, num_batch_threads=2,
                        max_enqueued=32)
# The model's own: all four requests in one batch.
OWN = {"max_batch_size": 4, "batch_timeout_micros": 10_000_000, "allowed_batch_sizes": [1, 2, 4]}


def _serve(base, batching: BatchingConfig, per_model: bool, names=("tiny",)):
    manager = ModelManager([ModelConfig(n, str(base / n)) for n in names], poll_seconds=0, warmup=False,
                           load_retries=0, batching=batching, per_model_batching=per_model)
    manager.start()
    return manager, PredictionCore(manager, batching)


def _batch_sizes(core: PredictionCore, name: str = "tiny", requests: int = 4) -> list[float]:
    """Runs `requests` one-image requests at once; returns (batches run, examples in them)."""
    servable, signature = core.resolve(name, None, None, "")
    futures = [core.submit(servable, signature, {"images": random_pixels(i)}) for i in range(requests)]
    for f in futures:
        assert f.result(30)["upscaled"].shape == (1, 16, 16, 3)
    registry = core.metrics.registry
    return [registry.get_sample_value("sr_tf_serving_batch_size_count"),
            registry.get_sample_value("sr_tf_serving_batch_size_sum")]


@pytest.fixture(scope="module")
def models(exported, tiny_model, tmp_path_factory):
    """BASE/tiny/1 exported with its own batching parameters (OWN), BASE/plain/1 without."""
    from sr_tf.export import export_savedmodel

    base = tmp_path_factory.mktemp("per_model")
    extra = {"pad_variable_length_inputs": False, "enable_large_batch_splitting": True}
    export_savedmodel(tiny_model, base / "tiny" / "1", ExportConfig(tile_size=0, warmup=False,
                                                                    batching={**OWN, **extra}))
    copy_version(exported, base / "plain", 1)
    return base


def test_both_flags_use_the_models_own_parameters_and_a_model_without_a_file_is_not_batched(models):
    manager, core = _serve(models, SERVER, per_model=True, names=("tiny", "plain"))
    own = manager.resolve("tiny").batching
    assert (own.max_batch_size, own.batch_timeout_micros, own.allowed_batch_sizes) == (4, 10_000_000, (1, 2, 4))
    assert own.num_batch_threads == SERVER.num_batch_threads  # the thread pool is the server's
    assert own.max_enqueued == BatchingConfig().max_enqueued  # left out: the default, not the server file's
    assert _batch_sizes(core) == [1, 4]  # one batch of four, not two of two
    # TF Serving wraps a model without the file in a plain session: no batching
    assert not manager.resolve("plain").batching.enabled
    assert _batch_sizes(core, "plain") == [1 + 4, 4 + 4]
    core.close()


def test_without_the_per_model_flag_the_server_wide_parameters_apply(models):
    manager, core = _serve(models, SERVER, per_model=False)
    assert manager.resolve("tiny").batching is None
    assert _batch_sizes(core) == [2, 4]  # two batches of two, as --batching_parameters_file says
    core.close()


def test_without_batching_the_per_model_file_is_not_read(models):
    manager, core = _serve(models, dataclasses.replace(SERVER, enabled=False), per_model=True)
    assert manager.resolve("tiny").batching is None
    assert _batch_sizes(core) == [4, 4]  # each request alone
    core.close()


@pytest.mark.parametrize("text, reason", [
    ("max_batch_size: 4", "max_batch_size"),  # a wrapper message written as a scalar
    ("max_batch_size { value: 4 }\nallowed_batch_sizes: 3", "allowed_batch_sizes"),  # TF Serving's load rule
])
def test_a_bad_batching_params_file_fails_the_load_naming_the_file(exported, tmp_path, text, reason):
    version = copy_version(exported, tmp_path / "tiny", 1)
    (version / BATCHING_PARAMS_FILE).write_text(text)
    manager, core = _serve(tmp_path, SERVER, per_model=True)
    ((v, state),) = manager.status("tiny")
    assert state.state == "END" and str(version / BATCHING_PARAMS_FILE) in state.error_message, state
    assert reason in state.error_message
    with pytest.raises(Exception, match="Servable not found"):
        manager.resolve("tiny")
    core.close()
    manager, core = _serve(tmp_path, SERVER, per_model=False)  # the file is read only under the flag
    assert manager.status("tiny")[0][1].state == "AVAILABLE"
    core.close()


def test_export_writes_the_file_tf_serving_reads(models):
    out = models / "tiny" / "1"
    proto = parse_text("BatchingParameters", (out / BATCHING_PARAMS_FILE).read_text())
    assert proto.max_batch_size.value == 4 and proto.batch_timeout_micros.value == 10_000_000
    assert list(proto.allowed_batch_sizes) == [1, 2, 4] and proto.enable_large_batch_splitting.value
    assert not (out / "assets.extra" / BATCHING_PARAMS_FILE).exists()
    assert not (models / "plain" / "1" / BATCHING_PARAMS_FILE).exists()  # only when asked for


@pytest.mark.parametrize("pair, message", [
    ("max_batch=4", "'max_batch' is not a BatchingParameters field; did you mean 'max_batch_size'?"),
    ("max_batch_size=0", "max_batch_size must be an integer >= 1"),
    ("pad_variable_length_inputs=2", "pad_variable_length_inputs must be true or false"),
])
def test_export_batching_flag_names_a_bad_field(pair, message, capsys, tmp_path):
    # refused before any model is loaded: the model name is not even looked up
    assert main(["export", "--model", "no-such-model", "--out", str(tmp_path / "m" / "1"), "--batching", pair]) == 2
    err = capsys.readouterr().err
    assert "--batching" in err and message in err, err


def test_export_batching_flag_values():
    args = build_parser(["export"]).parse_args(
        ["export", "--model", "m", "--out", "o/1", "--batching", "max_batch_size=4", "--batching",
         "allowed_batch_sizes=1,2,4", "--batching", "enable_large_batch_splitting=true",
         "--batching", "thread_pool_name=pool"])
    params = dict(args.batching)
    assert params == {"max_batch_size": 4, "allowed_batch_sizes": [1, 2, 4], "enable_large_batch_splitting": True,
                      "thread_pool_name": "pool"}
    text = batching_parameters_text(params)
    assert parse_text("BatchingParameters", text).thread_pool_name.value == "pool"


@pytest.mark.parametrize("flags, per_model", [
    (["--enable_batching", "--enable_per_model_batching_parameters"], True),
    (["--enable_batching=true", "--enable_per_model_batching_parameters=true"], True),
    (["--enable_per_model_batching_parameters"], False),  # TF Serving: only with --enable_batching
    (["--enable_batching"], False),
])
def test_serve_flags(flags, per_model):
    from sr_tf.cli.serve import NO_EFFECT, _server_config

    args = build_parser(["serve"]).parse_args(["serve", "--model_base_path", "/m", *flags])
    assert _server_config(args, None).per_model_batching is per_model
    assert "enable_per_model_batching_parameters" not in NO_EFFECT


def test_server_passes_per_model_batching_to_its_manager(exported):
    from sr_tf.serving.server import ModelServer, ServerConfig

    server = ModelServer([ModelConfig("tiny", str(exported.parent))],
                         ServerConfig(rest_port=None, grpc_port=None, batching=SERVER, per_model_batching=True))
    assert server.manager.per_model_batching and server.manager.batching is SERVER
    assert server.core.scheduler.config is SERVER
    server.core.close()


def test_a_models_own_queue_bound_refuses_its_requests_only():
    import threading

    from sr_tf.serving.batching import BatchScheduler, batch_key
    from sr_tf.serving.errors import Code, ServingError

    gate = threading.Event()
    sched = BatchScheduler(BatchingConfig(enabled=True, num_batch_threads=1, max_enqueued=8, batch_timeout_micros=0))
    own = BatchingConfig(enabled=True, max_batch_size=4, max_enqueued=2, batch_timeout_micros=0)
    x = np.zeros((1, 2), np.float32)

    def run(inputs):
        gate.wait(10)
        return {"y": inputs["x"]}

    futures = [sched.submit(batch_key("m", "s", {"x": x}), run, {"x": x}, options=own) for _ in range(2)]
    with pytest.raises(ServingError) as err:
        sched.submit(batch_key("m", "s", {"x": x}), run, {"x": x}, options=own)
    assert err.value.code is Code.RESOURCE_EXHAUSTED and "max_enqueued_batches" in str(err.value)
    futures.append(sched.submit(batch_key("other", "s", {"x": x}), run, {"x": x}))  # the server's bound: room
    gate.set()
    for f in futures:
        assert f.result(10)["y"].shape == (1, 2)
    sched.close()
