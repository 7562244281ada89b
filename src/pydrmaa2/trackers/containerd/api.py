"""containerd's gRPC API, the slice the tracker uses: messages declared from containerd's
published ``.proto`` field numbers and built at import time (no generated code), and ``Client``,
one channel scoped to a namespace.
"""

from __future__ import annotations

import enum
import os
import re
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    empty_pb2,
    message_factory,
    timestamp_pb2,
)
from google.protobuf.message import Message

__all__ = ["Client", "ReconnectingClient", "METHODS", "TaskStatus", "msg", "parse", "mounts",
           "seconds", "cpu_seconds", "SPEC_TYPE_URL", "DEFAULT_TIMEOUT"]

#: The type URL containerd's Go client registers for an OCI runtime spec (typeurl.Register(
#: &specs.Spec{}, "types.containerd.io", "opencontainers/runtime-spec", "1", "Spec")); the value
#: is the spec as JSON.
SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"

#: A response message as the tracker reads it: its class is built at run time from field numbers
#: (no generated code), so no type checker knows its fields.
Msg = Any


class TaskStatus(enum.IntEnum):
    """A task's status, containerd.v1.types.Status (api/types/task/task.proto)."""

    UNKNOWN = 0
    CREATED = 1
    RUNNING = 2
    STOPPED = 3
    PAUSED = 4
    PAUSING = 5

    @classmethod
    def of(cls, value: int) -> TaskStatus:
        """The status a Process message gives; UNKNOWN for a value containerd adds later."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


#: Seconds a unary call may take before it is abandoned (creating a task starts a shim and runc).
DEFAULT_TIMEOUT = 60.0

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "bool": _F.TYPE_BOOL,
    "int64": _F.TYPE_INT64, "uint32": _F.TYPE_UINT32, "uint64": _F.TYPE_UINT64,
    "int32": _F.TYPE_INT32,
}

# The messages, with the field names and numbers of containerd's api/services/*/v1/*.proto,
# api/types and api/events/task.proto (API 1.6, compatible with 1.7 and 2.x) and the CPU part of
# containerd/cgroups' metrics. Built into a private DescriptorPool, so any protobuf from 4.25 to
# 7.x (upb or pure Python) loads them and no other library's containerd stubs clash with them;
# the PyPI ``containerd`` stubs were made by an old protoc and fail to import on today's protobuf.
# Only the fields the tracker reads or writes are declared: protobuf skips (and keeps) unknown
# fields, so containerd adding fields breaks nothing. Message names only matter to Python (never
# on the wire), so nested types are flattened.
# file -> (package, {message: [(field, number, type, repeated?)]}); a type "map<string,string>"
# becomes the map-entry message protoc would generate; other types name messages or enums.
_PROTO: dict[str, tuple[str, dict[str, list[tuple[str, int, str, bool]]]]] = {
    "containerd/wire/types.proto": ("containerd.types", {
        # api/types/mount.proto
        "Mount": [("type", 1, "string", False), ("source", 2, "string", False),
                  ("target", 3, "string", False), ("options", 4, "string", True)],
        # api/types/descriptor.proto
        "Descriptor": [("media_type", 1, "string", False), ("digest", 2, "string", False),
                       ("size", 3, "int64", False),
                       ("annotations", 5, "map<string,string>", False)],
        # api/types/metrics.proto (data: a cgroups Metrics message, see cpu_seconds)
        "Metric": [("timestamp", 1, ".google.protobuf.Timestamp", False),
                   ("id", 2, "string", False), ("data", 3, ".google.protobuf.Any", False)],
    }),
    "containerd/wire/task.proto": ("containerd.v1.types", {
        # api/types/task/task.proto (status is the enum Status, see TaskStatus)
        "Process": [("container_id", 1, "string", False), ("id", 2, "string", False),
                    ("pid", 3, "uint32", False), ("status", 4, "int32", False),
                    ("stdin", 5, "string", False), ("stdout", 6, "string", False),
                    ("stderr", 7, "string", False), ("terminal", 8, "bool", False),
                    ("exit_status", 9, "uint32", False),
                    ("exited_at", 10, ".google.protobuf.Timestamp", False)],
    }),
    "containerd/wire/tasks.proto": ("containerd.services.tasks.v1", {
        # api/services/tasks/v1/tasks.proto
        "CreateTaskRequest": [("container_id", 1, "string", False),
                              ("rootfs", 3, ".containerd.types.Mount", True),
                              ("stdin", 4, "string", False), ("stdout", 5, "string", False),
                              ("stderr", 6, "string", False), ("terminal", 7, "bool", False)],
        "CreateTaskResponse": [("container_id", 1, "string", False), ("pid", 2, "uint32", False)],
        "StartRequest": [("container_id", 1, "string", False), ("exec_id", 2, "string", False)],
        "StartResponse": [("pid", 1, "uint32", False)],
        "DeleteTaskRequest": [("container_id", 1, "string", False)],
        "DeleteResponse": [("id", 1, "string", False), ("pid", 2, "uint32", False),
                           ("exit_status", 3, "uint32", False),
                           ("exited_at", 4, ".google.protobuf.Timestamp", False)],
        "GetRequest": [("container_id", 1, "string", False), ("exec_id", 2, "string", False)],
        "GetResponse": [("process", 1, ".containerd.v1.types.Process", False)],
        "ListTasksRequest": [("filter", 1, "string", False)],
        "ListTasksResponse": [("tasks", 1, ".containerd.v1.types.Process", True)],
        "KillRequest": [("container_id", 1, "string", False), ("exec_id", 2, "string", False),
                        ("signal", 3, "uint32", False), ("all", 4, "bool", False)],
        "PauseTaskRequest": [("container_id", 1, "string", False)],
        "ResumeTaskRequest": [("container_id", 1, "string", False)],
        "ListPidsRequest": [("container_id", 1, "string", False)],
        "ProcessInfo": [("pid", 1, "uint32", False), ("info", 2, ".google.protobuf.Any", False)],
        "ListPidsResponse": [("processes", 1, ".containerd.services.tasks.v1.ProcessInfo", True)],
        "WaitRequest": [("container_id", 1, "string", False), ("exec_id", 2, "string", False)],
        "WaitResponse": [("exit_status", 1, "uint32", False),
                         ("exited_at", 2, ".google.protobuf.Timestamp", False)],
        "MetricsRequest": [("filters", 1, "string", True)],
        "MetricsResponse": [("metrics", 1, ".containerd.types.Metric", True)],
    }),
    "containerd/wire/cgroups_v1.proto": ("io.containerd.cgroups.v1", {
        # github.com/containerd/cgroups stats/v1/metrics.proto: a task's metrics on cgroup v1
        "Metrics": [("cpu", 3, "CPUStat", False)],
        "CPUStat": [("usage", 1, "CPUUsage", False)],
        "CPUUsage": [("total", 1, "uint64", False), ("kernel", 2, "uint64", False),
                     ("user", 3, "uint64", False)],  # nanoseconds
    }),
    "containerd/wire/cgroups_v2.proto": ("io.containerd.cgroups.v2", {
        # github.com/containerd/cgroups cgroup2/stats/metrics.proto: the same on cgroup v2
        "Metrics": [("cpu", 2, "CPUStat", False)],
        "CPUStat": [("usage_usec", 1, "uint64", False), ("user_usec", 2, "uint64", False),
                    ("system_usec", 3, "uint64", False)],
    }),
    "containerd/wire/containers.proto": ("containerd.services.containers.v1", {
        # api/services/containers/v1/containers.proto (Container.Runtime flattened)
        "ContainerRuntime": [("name", 1, "string", False),
                             ("options", 2, ".google.protobuf.Any", False)],
        "Container": [("id", 1, "string", False), ("labels", 2, "map<string,string>", False),
                      ("image", 3, "string", False),
                      ("runtime", 4, ".containerd.services.containers.v1.ContainerRuntime", False),
                      ("spec", 5, ".google.protobuf.Any", False),
                      ("snapshotter", 6, "string", False), ("snapshot_key", 7, "string", False),
                      ("created_at", 8, ".google.protobuf.Timestamp", False),
                      ("updated_at", 9, ".google.protobuf.Timestamp", False)],
        "GetContainerRequest": [("id", 1, "string", False)],
        "GetContainerResponse": [
            ("container", 1, ".containerd.services.containers.v1.Container", False)],
        "ListContainersRequest": [("filters", 1, "string", True)],
        "ListContainersResponse": [
            ("containers", 1, ".containerd.services.containers.v1.Container", True)],
        "CreateContainerRequest": [
            ("container", 1, ".containerd.services.containers.v1.Container", False)],
        "CreateContainerResponse": [
            ("container", 1, ".containerd.services.containers.v1.Container", False)],
        "DeleteContainerRequest": [("id", 1, "string", False)],
    }),
    "containerd/wire/images.proto": ("containerd.services.images.v1", {
        # api/services/images/v1/images.proto
        "Image": [("name", 1, "string", False), ("labels", 2, "map<string,string>", False),
                  ("target", 3, ".containerd.types.Descriptor", False),
                  ("created_at", 7, ".google.protobuf.Timestamp", False),
                  ("updated_at", 8, ".google.protobuf.Timestamp", False)],
        "GetImageRequest": [("name", 1, "string", False)],
        "GetImageResponse": [("image", 1, ".containerd.services.images.v1.Image", False)],
        "ListImagesRequest": [("filters", 1, "string", True)],
        "ListImagesResponse": [("images", 1, ".containerd.services.images.v1.Image", True)],
    }),
    "containerd/wire/content.proto": ("containerd.services.content.v1", {
        # api/services/content/v1/content.proto
        "ReadContentRequest": [("digest", 1, "string", False), ("offset", 2, "int64", False),
                               ("size", 3, "int64", False)],
        "ReadContentResponse": [("offset", 1, "int64", False), ("data", 2, "bytes", False)],
    }),
    "containerd/wire/snapshots.proto": ("containerd.services.snapshots.v1", {
        # api/services/snapshots/v1/snapshots.proto (Info.kind is the enum Kind)
        "PrepareSnapshotRequest": [("snapshotter", 1, "string", False),
                                   ("key", 2, "string", False), ("parent", 3, "string", False),
                                   ("labels", 4, "map<string,string>", False)],
        "PrepareSnapshotResponse": [("mounts", 1, ".containerd.types.Mount", True)],
        "MountsRequest": [("snapshotter", 1, "string", False), ("key", 2, "string", False)],
        "MountsResponse": [("mounts", 1, ".containerd.types.Mount", True)],
        "RemoveSnapshotRequest": [("snapshotter", 1, "string", False),
                                  ("key", 2, "string", False)],
        "Info": [("name", 1, "string", False), ("parent", 2, "string", False),
                 ("kind", 3, "int32", False),
                 ("created_at", 4, ".google.protobuf.Timestamp", False),
                 ("updated_at", 5, ".google.protobuf.Timestamp", False),
                 ("labels", 6, "map<string,string>", False)],
        "ListSnapshotsRequest": [("snapshotter", 1, "string", False),
                                 ("filters", 2, "string", True)],
        "ListSnapshotsResponse": [("info", 1, ".containerd.services.snapshots.v1.Info", True)],
    }),
    "containerd/wire/leases.proto": ("containerd.services.leases.v1", {
        # api/services/leases/v1/leases.proto
        "Lease": [("id", 1, "string", False),
                  ("created_at", 2, ".google.protobuf.Timestamp", False),
                  ("labels", 3, "map<string,string>", False)],
        "CreateRequest": [("id", 1, "string", False), ("labels", 3, "map<string,string>", False)],
        "CreateResponse": [("lease", 1, ".containerd.services.leases.v1.Lease", False)],
        "DeleteRequest": [("id", 1, "string", False), ("sync", 2, "bool", False)],
    }),
    "containerd/wire/events.proto": ("containerd.services.events.v1", {
        # api/services/events/v1/events.proto (1.6; 2.x moved Envelope to containerd.types,
        # same fields)
        "PublishRequest": [("topic", 1, "string", False),
                           ("event", 2, ".google.protobuf.Any", False)],
        "SubscribeRequest": [("filters", 1, "string", True)],
        "Envelope": [("timestamp", 1, ".google.protobuf.Timestamp", False),
                     ("namespace", 2, "string", False), ("topic", 3, "string", False),
                     ("event", 4, ".google.protobuf.Any", False)],
    }),
    "containerd/wire/task_events.proto": ("containerd.events", {
        # api/events/task.proto: every task event starts with container_id = 1
        "TaskExit": [("container_id", 1, "string", False), ("id", 2, "string", False),
                     ("pid", 3, "uint32", False), ("exit_status", 4, "uint32", False),
                     ("exited_at", 5, ".google.protobuf.Timestamp", False)],
        "TaskStart": [("container_id", 1, "string", False), ("pid", 2, "uint32", False)],
        "TaskEvent": [("container_id", 1, "string", False)],
    }),
    "containerd/wire/version.proto": ("containerd.services.version.v1", {
        # api/services/version/v1/version.proto
        "VersionResponse": [("version", 1, "string", False), ("revision", 2, "string", False)],
    }),
}

# (service path, request, response); None stands for google.protobuf.Empty.
METHODS: dict[str, tuple[str, str | None, str | None]] = {
    "tasks.Create": ("/containerd.services.tasks.v1.Tasks/Create",
                     "containerd.services.tasks.v1.CreateTaskRequest",
                     "containerd.services.tasks.v1.CreateTaskResponse"),
    "tasks.Start": ("/containerd.services.tasks.v1.Tasks/Start",
                    "containerd.services.tasks.v1.StartRequest",
                    "containerd.services.tasks.v1.StartResponse"),
    "tasks.Delete": ("/containerd.services.tasks.v1.Tasks/Delete",
                     "containerd.services.tasks.v1.DeleteTaskRequest",
                     "containerd.services.tasks.v1.DeleteResponse"),
    "tasks.Get": ("/containerd.services.tasks.v1.Tasks/Get",
                  "containerd.services.tasks.v1.GetRequest",
                  "containerd.services.tasks.v1.GetResponse"),
    "tasks.List": ("/containerd.services.tasks.v1.Tasks/List",
                   "containerd.services.tasks.v1.ListTasksRequest",
                   "containerd.services.tasks.v1.ListTasksResponse"),
    "tasks.Kill": ("/containerd.services.tasks.v1.Tasks/Kill",
                   "containerd.services.tasks.v1.KillRequest", None),
    "tasks.Pause": ("/containerd.services.tasks.v1.Tasks/Pause",
                    "containerd.services.tasks.v1.PauseTaskRequest", None),
    "tasks.Resume": ("/containerd.services.tasks.v1.Tasks/Resume",
                     "containerd.services.tasks.v1.ResumeTaskRequest", None),
    "tasks.ListPids": ("/containerd.services.tasks.v1.Tasks/ListPids",
                       "containerd.services.tasks.v1.ListPidsRequest",
                       "containerd.services.tasks.v1.ListPidsResponse"),
    "tasks.Metrics": ("/containerd.services.tasks.v1.Tasks/Metrics",
                      "containerd.services.tasks.v1.MetricsRequest",
                      "containerd.services.tasks.v1.MetricsResponse"),
    "tasks.Wait": ("/containerd.services.tasks.v1.Tasks/Wait",
                   "containerd.services.tasks.v1.WaitRequest",
                   "containerd.services.tasks.v1.WaitResponse"),
    "containers.Get": ("/containerd.services.containers.v1.Containers/Get",
                       "containerd.services.containers.v1.GetContainerRequest",
                       "containerd.services.containers.v1.GetContainerResponse"),
    "containers.List": ("/containerd.services.containers.v1.Containers/List",
                        "containerd.services.containers.v1.ListContainersRequest",
                        "containerd.services.containers.v1.ListContainersResponse"),
    "containers.Create": ("/containerd.services.containers.v1.Containers/Create",
                          "containerd.services.containers.v1.CreateContainerRequest",
                          "containerd.services.containers.v1.CreateContainerResponse"),
    "containers.Delete": ("/containerd.services.containers.v1.Containers/Delete",
                          "containerd.services.containers.v1.DeleteContainerRequest", None),
    "images.Get": ("/containerd.services.images.v1.Images/Get",
                   "containerd.services.images.v1.GetImageRequest",
                   "containerd.services.images.v1.GetImageResponse"),
    "images.List": ("/containerd.services.images.v1.Images/List",
                    "containerd.services.images.v1.ListImagesRequest",
                    "containerd.services.images.v1.ListImagesResponse"),
    "snapshots.Prepare": ("/containerd.services.snapshots.v1.Snapshots/Prepare",
                          "containerd.services.snapshots.v1.PrepareSnapshotRequest",
                          "containerd.services.snapshots.v1.PrepareSnapshotResponse"),
    "snapshots.Mounts": ("/containerd.services.snapshots.v1.Snapshots/Mounts",
                         "containerd.services.snapshots.v1.MountsRequest",
                         "containerd.services.snapshots.v1.MountsResponse"),
    "snapshots.Remove": ("/containerd.services.snapshots.v1.Snapshots/Remove",
                         "containerd.services.snapshots.v1.RemoveSnapshotRequest", None),
    "leases.Create": ("/containerd.services.leases.v1.Leases/Create",
                      "containerd.services.leases.v1.CreateRequest",
                      "containerd.services.leases.v1.CreateResponse"),
    "leases.Delete": ("/containerd.services.leases.v1.Leases/Delete",
                      "containerd.services.leases.v1.DeleteRequest", None),
    "events.Publish": ("/containerd.services.events.v1.Events/Publish",
                       "containerd.services.events.v1.PublishRequest", None),
    "version.Version": ("/containerd.services.version.v1.Version/Version", None,
                        "containerd.services.version.v1.VersionResponse"),
}

_STREAMS: dict[str, tuple[str, str, str]] = {
    "content.Read": ("/containerd.services.content.v1.Content/Read",
                     "containerd.services.content.v1.ReadContentRequest",
                     "containerd.services.content.v1.ReadContentResponse"),
    "snapshots.List": ("/containerd.services.snapshots.v1.Snapshots/List",
                       "containerd.services.snapshots.v1.ListSnapshotsRequest",
                       "containerd.services.snapshots.v1.ListSnapshotsResponse"),
    "events.Subscribe": ("/containerd.services.events.v1.Events/Subscribe",
                         "containerd.services.events.v1.SubscribeRequest",
                         "containerd.services.events.v1.Envelope"),
}


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    done = []
    for wkt in (any_pb2, timestamp_pb2):
        pool.AddSerializedFile(wkt.DESCRIPTOR.serialized_pb)
        done.append(wkt.DESCRIPTOR.name)
    for name, (package, messages) in _PROTO.items():
        # Every file may use the ones declared before it (unused dependencies are harmless).
        f = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3",
                                               dependency=done)
        for mname, fields in messages.items():
            m = f.message_type.add(name=mname)
            for fname, number, ftype, repeated in fields:
                fd = m.field.add(name=fname, number=number, json_name=_camel(fname))
                fd.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
                if ftype == "map<string,string>":
                    entry = m.nested_type.add(name=_camel(fname, upper=True) + "Entry")
                    entry.options.map_entry = True
                    for n, num in (("key", 1), ("value", 2)):
                        entry.field.add(name=n, number=num, type=_F.TYPE_STRING,
                                        label=_F.LABEL_OPTIONAL, json_name=n)
                    fd.label = _F.LABEL_REPEATED
                    fd.type = _F.TYPE_MESSAGE
                    fd.type_name = f".{package}.{mname}.{entry.name}"
                elif ftype in _SCALARS:
                    fd.type = _SCALARS[ftype]
                else:
                    fd.type = _F.TYPE_MESSAGE
                    fd.type_name = ftype if ftype.startswith(".") else f".{package}.{ftype}"
        pool.Add(f)
        done.append(name)
    return pool


def _camel(name: str, upper: bool = False) -> str:
    parts = name.split("_")
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    return out if upper else out[:1].lower() + out[1:]


_POOL = _build_pool()
_CLASSES: dict[str, type[Message]] = {}


def _class(full_name: str) -> type[Message]:
    cls = _CLASSES.get(full_name)
    if cls is None:
        cls = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))
        _CLASSES[full_name] = cls
    return cls


def msg(full_name: str, **fields: Any) -> Message:
    """A new message of type ``full_name`` (e.g. ``containerd.services.tasks.v1.StartRequest``)."""
    return _class(full_name)(**fields)


def parse(full_name: str, data: bytes) -> Message:
    """Decode ``data`` (e.g. the value of an event's Any) as a ``full_name`` message."""
    return _class(full_name).FromString(data)


def _parser(full_name: str | None) -> Callable[[bytes], Message]:
    """A deserializer for grpc: bytes to a ``full_name`` message (None: Empty)."""
    from_string: Callable[[bytes], Message] = (
        empty_pb2.Empty if full_name is None else _class(full_name)).FromString
    return from_string


def _serializer(full_name: str | None) -> Callable[[Message], bytes]:
    """A serializer for grpc: a message to bytes (None: the empty request)."""
    if full_name is None:
        return lambda _: b""
    return lambda m: m.SerializeToString()


class Client:
    """One connection to containerd, scoped to a namespace; thread-safe, re-made after fork."""

    #: gRPC channel options a subclass adds (e.g. a reconnection backoff of its own).
    channel_options: tuple[tuple[str, int], ...] = ()

    def __init__(self, target: str, namespace: str) -> None:
        self.target = target
        self.namespace = namespace
        self.metadata: tuple[tuple[str, str], ...] = (("containerd-namespace", namespace),)
        self._lock = threading.Lock()
        self._pid = -1
        self._channel: grpc.Channel | None = None
        self._unary: dict[str, Any] = {}
        self._streams: dict[str, Any] = {}

    def _connect(self) -> None:
        with self._lock:
            if self._pid == os.getpid() and self._channel is not None:
                return
            self._channel = grpc.insecure_channel(self.target, options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.enable_retries", 0),
                *self.channel_options,
            ])
            self._unary = {
                k: self._channel.unary_unary(path, request_serializer=_serializer(req),
                                             response_deserializer=_parser(resp))
                for k, (path, req, resp) in METHODS.items()}
            self._streams = {
                k: self._channel.unary_stream(path, request_serializer=_serializer(req),
                                              response_deserializer=_parser(resp))
                for k, (path, req, resp) in _STREAMS.items()}
            self._pid = os.getpid()

    def call(self, method: str, request: Message | None = None, *,
             timeout: float | None = DEFAULT_TIMEOUT, lease: str | None = None) -> Msg:
        """Call a unary method (``"tasks.Start"``) and return its response message."""
        if self._pid != os.getpid():
            self._connect()
        md = self.metadata if lease is None else (*self.metadata, ("containerd-lease", lease))
        return self._unary[method](request, timeout=timeout, metadata=md)

    def stream(self, method: str, request: Message, *,
               timeout: float | None = None) -> Any:
        """Call a server-streaming method; the result iterates and can be ``cancel()``-ed."""
        if self._pid != os.getpid():
            self._connect()
        return self._streams[method](request, timeout=timeout, metadata=self.metadata)

    def read_blob(self, digest: str) -> bytes:
        """The whole content blob ``digest`` from the content store."""
        req = msg("containerd.services.content.v1.ReadContentRequest", digest=digest)
        return b"".join(r.data for r in self.stream("content.Read", req, timeout=DEFAULT_TIMEOUT))

    def close(self) -> None:
        """Close the channel (streams on it end with CANCELLED)."""
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = None
            self._pid = -1


#: gRPC's reconnection backoff (ms): the channel tries containerd again at most a second after a
#: failed attempt, so a call works soon after containerd is back (gRPC's default backoff grows to
#: 120 s). A subchannel pool of its own: a fresh channel of the same target and options would
#: otherwise share the one in backoff.
RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.use_local_subchannel_pool", 1),
)
#: Details of an UNAVAILABLE gRPC error that mean no connection was made (nothing was sent).
NOT_CONNECTED = re.compile(r"failed to connect|connect failed|connection refused", re.IGNORECASE)


class ReconnectingClient(Client):
    """A ``Client`` whose channel reconnects promptly (see RECONNECT_OPTIONS), and is replaced
    when it still backs off although containerd answers again."""

    channel_options = RECONNECT_OPTIONS

    def call(self, method: str, request: Message | None = None, *,
             timeout: float | None = DEFAULT_TIMEOUT, lease: str | None = None) -> Msg:
        try:
            return super().call(method, request, timeout=timeout, lease=lease)
        except grpc.RpcError as e:
            # Not connected, so the request never left: a new channel may send it again.
            if e.code() is not grpc.StatusCode.UNAVAILABLE or not NOT_CONNECTED.search(
                    e.details() or "") or not self.answers():
                raise
        self.renew()
        return super().call(method, request, timeout=timeout, lease=lease)

    def answers(self) -> bool:
        """Whether containerd accepts a connection now (its socket or port)."""
        try:
            if self.target.startswith("unix://"):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(1.0)
                    s.connect(self.target.removeprefix("unix://"))
            else:
                host, _, port = self.target.rpartition(":")
                socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
        except (OSError, ValueError):
            return False
        return True

    def renew(self) -> None:
        """A new channel in place of the current one; calls under way end on the old one (it
        is not closed under them, and goes once they are done)."""
        with self._lock:
            self._pid = -1
        self._connect()


def seconds(stamp: object) -> float | None:
    """A protobuf Timestamp as epoch seconds (None when unset)."""
    secs, nanos = getattr(stamp, "seconds", 0), getattr(stamp, "nanos", 0)
    return secs + nanos / 1e9 if secs > 0 else None


def mounts(items: Sequence[Message]) -> list[Message]:
    """Copies of Mount messages (snapshot mounts reused in a task request)."""
    return [msg("containerd.types.Mount", type=m.type, source=m.source, target=m.target,
                options=list(m.options)) for m in items]


def cpu_seconds(data: Message) -> float | None:
    """The CPU time in seconds a task's cgroup used, from the ``data`` (an Any) of one of
    Tasks.Metrics' metrics: cgroups v1's cpu.usage.total (ns) or v2's cpu.usage_usec. None for
    another type of metrics."""
    name = data.type_url.rsplit("/", 1)[-1]
    if name == "io.containerd.cgroups.v1.Metrics":
        nanoseconds: int = parse(name, data.value).cpu.usage.total
        return nanoseconds / 1e9
    if name == "io.containerd.cgroups.v2.Metrics":
        microseconds: int = parse(name, data.value).cpu.usage_usec
        return microseconds / 1e6
    return None
