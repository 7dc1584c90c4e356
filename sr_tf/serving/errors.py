"""Errors with TF Serving's status codes and their HTTP / gRPC mappings."""

from __future__ import annotations

import enum

import grpc


class Code(enum.Enum):
    """A subset of `tensorflow::error::Code` with the HTTP status TF Serving's REST handler uses."""

    INVALID_ARGUMENT = (400, grpc.StatusCode.INVALID_ARGUMENT)
    FAILED_PRECONDITION = (400, grpc.StatusCode.FAILED_PRECONDITION)
    OUT_OF_RANGE = (400, grpc.StatusCode.OUT_OF_RANGE)
    NOT_FOUND = (404, grpc.StatusCode.NOT_FOUND)
    PAYLOAD_TOO_LARGE = (413, grpc.StatusCode.RESOURCE_EXHAUSTED)  # REST only (body limit)
    RESOURCE_EXHAUSTED = (429, grpc.StatusCode.RESOURCE_EXHAUSTED)
    UNIMPLEMENTED = (501, grpc.StatusCode.UNIMPLEMENTED)
    UNAVAILABLE = (503, grpc.StatusCode.UNAVAILABLE)
    CANCELLED = (499, grpc.StatusCode.CANCELLED)  # the client went away; nobody reads the answer
    DEADLINE_EXCEEDED = (504, grpc.StatusCode.DEADLINE_EXCEEDED)
    INTERNAL = (500, grpc.StatusCode.INTERNAL)

    @property
    def http_status(self) -> int:
        return self.value[0]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self.value[1]


class ServingError(Exception):
    """An error answered to a client: `{"error": message}` with `code.http_status` over REST."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)
