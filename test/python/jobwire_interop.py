"""Drives Jobwire's gRPC API from Python's grpcio, as a Python producer would.

Run by test/interop-python.test.ts with Debian's python3-grpcio and python3-protobuf under
/usr/bin/python3. There is no code generation: the contract comes from a FileDescriptorSet
that `buf build proto --as-file-descriptor-set` wrote, and message classes are built from it
at run time. Each scenario prints one JSON summary on stdout; the test asserts on it. Any
unexpected failure raises, printing a traceback on stderr and exiting non-zero.

Usage: jobwire_interop.py SCENARIO --target HOST:PORT --image FILE
Scenarios: lifecycle, errors, gzip-and-metadata, health-watch.
"""

import argparse
import json
import sys
import uuid

import google.protobuf
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

# Every call gets a deadline, so a server that never answers fails the run instead of
# hanging it.
DEADLINE_SECONDS = 10

# grpc core honours http_proxy and friends; the server is on loopback.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


def load_pool(image_path):
    """A descriptor pool holding every file of the image, imports (google/protobuf/*) included."""
    files = descriptor_pb2.FileDescriptorSet()
    with open(image_path, "rb") as image:
        files.ParseFromString(image.read())
    pool = descriptor_pool.DescriptorPool()
    # buf writes files in dependency order, so each file's imports are already in the pool.
    for file in files.file:
        pool.Add(file)
    return pool


def message_class(pool, descriptor):
    """The message class of a descriptor, on the protobuf versions Debian ships and newer ones."""
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22 (Debian 13)
        return message_factory.GetMessageClass(descriptor)
    # protobuf 4.21 (Debian 12, python3-protobuf 3.21.12) has only the factory, which later
    # versions deprecate and then remove.
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


class ServiceClient:
    """Calls the methods of one service by name, taking and returning JSON-shaped dicts."""

    def __init__(self, channel, pool, service_name):
        self._channel = channel
        self._pool = pool
        self._service = pool.FindServiceByName(service_name)

    def _method(self, name):
        method = self._service.methods_by_name[name]
        request_class = message_class(self._pool, method.input_type)
        response_class = message_class(self._pool, method.output_type)
        return method, request_class, response_class

    def call(self, name, request, **kwargs):
        """A unary call; returns the response as a dict (proto3 JSON names) and the grpc.Call."""
        method, request_class, response_class = self._method(name)
        rpc = self._channel.unary_unary(
            f"/{self._service.full_name}/{method.name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        message = json_format.ParseDict(request, request_class())
        response, call = rpc.with_call(message, timeout=DEADLINE_SECONDS, **kwargs)
        return json_format.MessageToDict(response), call

    def stream(self, name, request, **kwargs):
        """A server-streaming call; returns the grpc iterator (also a grpc.Call)."""
        method, request_class, response_class = self._method(name)
        rpc = self._channel.unary_stream(
            f"/{self._service.full_name}/{method.name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        return rpc(json_format.ParseDict(request, request_class()), timeout=DEADLINE_SECONDS, **kwargs)

    def failure(self, name, request):
        """Makes a call that is expected to fail; returns its status code name and details."""
        try:
            response, _ = self.call(name, request)
        except grpc.RpcError as error:
            return {"code": error.code().name, "details": error.details()}
        raise AssertionError(f"{name} was expected to fail but answered {response}")


def lifecycle(channel, pool):
    """Enqueue with a JSON payload, metadata and phases; get, list and cancel it."""
    queue = ServiceClient(channel, pool, "jobwire.v1.QueueService")
    run = str(uuid.uuid4())
    payload = {"to": "ada@example.com", "tries": [1, 2.5], "vip": True, "note": None, "nested": {"ok": "é✓"}}
    enqueued, _ = queue.call(
        "Enqueue",
        {
            "job": {
                "queue": "emails",
                "kind": "send-welcome",
                "payload": payload,
                "priority": 5,
                "metadata": {"tenant": "acme", "run": run},
                "phases": ["render", "send"],
            }
        },
    )
    job_id = enqueued["job"]["id"]
    got, _ = queue.call("GetJob", {"id": job_id})
    listed, _ = queue.call("ListJobs", {"metadata": {"run": run}, "queues": ["emails"]})
    cancelled, _ = queue.call("CancelJob", {"id": job_id, "reason": "not needed"})
    after_cancel, _ = queue.call("GetJob", {"id": job_id})
    return {
        "sentPayload": payload,
        "run": run,
        "enqueued": enqueued["job"],
        "got": got["job"],
        "listedIds": [job["id"] for job in listed.get("jobs", [])],
        "cancelled": cancelled["job"],
        "afterCancel": after_cancel["job"],
    }


def errors(channel, pool):
    """Requests the server must refuse, each with its status code and details string."""
    queue = ServiceClient(channel, pool, "jobwire.v1.QueueService")
    return {
        "emptyQueue": queue.failure("Enqueue", {"job": {"queue": "", "kind": "send"}}),
        "duplicatePhase": queue.failure("Enqueue", {"job": {"queue": "emails", "kind": "send", "phases": ["a", "a"]}}),
        "badJobId": queue.failure("GetJob", {"id": "not-a-uuid"}),
        "unknownJob": queue.failure("GetJob", {"id": "01930000-0000-7000-8000-000000000000"}),
    }


# Compressible and large, so a gzip-compressed call is far smaller on the wire than the
# payload; the test measures the bytes that cross a relay in front of the server.
LARGE_PAYLOAD = {"text": "jobwire " * 32768}


def gzip_and_metadata(channel, pool):
    """Custom request metadata and gzip on both requests; the large payload round-trips."""
    queue = ServiceClient(channel, pool, "jobwire.v1.QueueService")
    request_id = str(uuid.uuid4())
    metadata = (("x-request-id", request_id), ("x-trace-bin", b"\x00\x01\xfe\xff"))
    enqueued, enqueue_call = queue.call(
        "Enqueue",
        {"job": {"queue": "bulk", "kind": "import", "payload": LARGE_PAYLOAD}},
        metadata=metadata,
        compression=grpc.Compression.Gzip,
    )
    got, get_call = queue.call(
        "GetJob",
        {"id": enqueued["job"]["id"]},
        metadata=metadata,
        compression=grpc.Compression.Gzip,
    )
    return {
        "payloadJsonBytes": len(json.dumps(LARGE_PAYLOAD).encode()),
        "payloadRoundTrips": got["job"].get("payload") == LARGE_PAYLOAD,
        "enqueueCode": enqueue_call.code().name,
        "getCode": get_call.code().name,
        "state": got["job"]["state"],
    }


def health_watch(channel, pool):
    """grpc.health.v1: Check for the server and the queue service, and the first Watch message."""
    health = ServiceClient(channel, pool, "grpc.health.v1.Health")
    server, _ = health.call("Check", {"service": ""})
    queue, _ = health.call("Check", {"service": "jobwire.v1.QueueService"})
    unknown = health.failure("Check", {"service": "no.such.Service"})
    watch = health.stream("Watch", {"service": "jobwire.v1.QueueService"})
    first = json_format.MessageToDict(next(watch))
    # The stream stays open until the server shuts down; the client ends it.
    watch.cancel()
    return {
        "server": server.get("status"),
        "queueService": queue.get("status"),
        "unknown": unknown,
        "watchFirst": first.get("status"),
        "watchEndedAs": watch.code().name,
    }


SCENARIOS = {
    "lifecycle": lifecycle,
    "errors": errors,
    "gzip-and-metadata": gzip_and_metadata,
    "health-watch": health_watch,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--target", required=True, help="host:port of the Jobwire server")
    parser.add_argument("--image", required=True, help="FileDescriptorSet written by buf build")
    args = parser.parse_args()
    pool = load_pool(args.image)
    with grpc.insecure_channel(args.target, options=CHANNEL_OPTIONS) as channel:
        summary = SCENARIOS[args.scenario](channel, pool)
    summary["versions"] = {"grpc": grpc.__version__, "protobuf": google.protobuf.__version__}
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
