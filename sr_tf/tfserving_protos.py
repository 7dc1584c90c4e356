"""TF Serving config messages that the `tensorflow-serving-api` wheel does not ship.

The wheel (2.21) has `tensorflow_serving.config.model_server_config_pb2` but neither
`servables/tensorflow/session_bundle_config_pb2` nor `config/monitoring_config_pb2`. So
`BatchingParameters` (session_bundle_config.proto, all nine fields: 1-7 plus
`enable_large_batch_splitting` = 8 and `max_execution_batch_size` = 9), `MonitoringConfig` /
`PrometheusConfig` (monitoring_config.proto) and `SSLConfig` (ssl_config.proto) are declared here with the upstream names, field
numbers and types, in a private descriptor pool, and parsed with protobuf's own `text_format`, so
`--batching_parameters_file` and `--monitoring_config_file` parse exactly as TF Serving parses
them (tests/serving/test_deployment_configs.py checks the declarations field by field).
"""

from __future__ import annotations

import functools

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

_T = descriptor_pb2.FieldDescriptorProto


def _field(msg, name: str, number: int, ftype: int, type_name: str = "", repeated: bool = False):
    f = msg.field.add(name=name, number=number, type=ftype)
    f.label = _T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL
    if type_name:
        f.type_name = type_name


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="sr_tf/serving/tensorflow_serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    b = fdp.message_type.add(name="BatchingParameters")
    i64, msg = ".google.protobuf.Int64Value", _T.TYPE_MESSAGE
    _field(b, "max_batch_size", 1, msg, i64)
    _field(b, "batch_timeout_micros", 2, msg, i64)
    _field(b, "max_enqueued_batches", 3, msg, i64)
    _field(b, "num_batch_threads", 4, msg, i64)
    _field(b, "thread_pool_name", 5, msg, ".google.protobuf.StringValue")
    _field(b, "allowed_batch_sizes", 6, _T.TYPE_INT64, repeated=True)
    _field(b, "pad_variable_length_inputs", 7, _T.TYPE_BOOL)
    _field(b, "enable_large_batch_splitting", 8, msg, ".google.protobuf.BoolValue")
    _field(b, "max_execution_batch_size", 9, msg, i64)
    p = fdp.message_type.add(name="PrometheusConfig")
    _field(p, "enable", 1, _T.TYPE_BOOL)
    _field(p, "path", 2, _T.TYPE_STRING)
    m = fdp.message_type.add(name="MonitoringConfig")
    _field(m, "prometheus_config", 1, msg, ".tensorflow.serving.PrometheusConfig")
    s = fdp.message_type.add(name="SSLConfig")  # config/ssl_config.proto
    _field(s, "server_key", 1, _T.TYPE_STRING)
    _field(s, "server_cert", 2, _T.TYPE_STRING)
    _field(s, "custom_ca", 3, _T.TYPE_STRING)
    _field(s, "client_verify", 4, _T.TYPE_BOOL)
    pool.Add(fdp)
    return pool


def message_class(name: str):
    """The message class `tensorflow.serving.<name>` (BatchingParameters, MonitoringConfig, PrometheusConfig, SSLConfig)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"tensorflow.serving.{name}"))


def parse_text(name: str, text: str):
    """Parses a text proto of `tensorflow.serving.<name>`; raises ValueError naming the problem."""
    proto = message_class(name)()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as err:
        raise ValueError(f"Invalid {name} text proto: {err}") from None
    return proto
