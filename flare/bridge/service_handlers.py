"""The Simulator service's gRPC method table, with request parsing that never fails a call
as INTERNAL.

gRPC's generated ``add_SimulatorServicer_to_server`` parses requests with ``FromString``;
bytes that do not parse make gRPC itself end the call with INTERNAL ("Exception
deserializing request!"), although INTERNAL is reserved for the environment's own
failures. Here a request that does not parse becomes a ``Malformed`` marker and the call
ends with INVALID_ARGUMENT, on unary calls and on every message of a stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb


class Malformed:
    """A request whose bytes are not a valid message of its type."""

    __slots__ = ("message",)

    def __init__(self, type_name: str, size: int) -> None:
        self.message = f"the request ({size} bytes) could not be parsed as {type_name}"


def _parser(message_type: Any) -> Callable[[bytes], Any]:
    parse = message_type.FromString
    type_name = message_type.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError, or any other parse failure
            return Malformed(type_name, len(data))

    return deserialize


def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if type(request) is Malformed:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return behavior(request, context)

    return handle


def _well_formed(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
    for request in requests:
        if type(request) is Malformed:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        yield request


def _streaming(behavior: Callable[[Iterator[Any], grpc.ServicerContext], Iterator[Any]]):
    def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        return behavior(_well_formed(requests, context), context)

    return handle


def method_handlers(servicer: Any) -> dict[str, grpc.RpcMethodHandler]:
    """Every method of the Simulator service, bound to ``servicer``'s method of its name."""
    service = pb.DESCRIPTOR.services_by_name["Simulator"]
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        behavior = getattr(servicer, method.name)
        options = dict(
            request_deserializer=_parser(request_type),
            response_serializer=response_type.SerializeToString,
        )
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                _streaming(behavior), **options
            )
        elif not method.client_streaming and not method.server_streaming:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(_unary(behavior), **options)
        else:  # the contract has none; a new one must choose its wrapping here
            raise TypeError(f"{method.full_name}: no handler for this streaming kind")
    return handlers


def add_simulator_service(servicer: Any, server: grpc.Server) -> None:
    """Register the Simulator service as the generated code would, with safe parsing."""
    handlers = method_handlers(servicer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
