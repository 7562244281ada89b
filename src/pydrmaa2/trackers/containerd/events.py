"""containerd's task events as change feeds: one Events.Subscribe stream per tracker, shared by
its feeds, each feed woken when an event names one of its containers."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Sequence

import grpc

from ...errors import Drmaa2Error, DrmCommunicationError
from ..base import ChangeFeed
from . import api
from .tables import drmaa2_error

__all__ = ["Subscription", "Feed"]

#: The topic of the ping that tells a subscription it is live.
PING_TOPIC = "/pydrmaa2/watch-ready"
#: Seconds a subscription waits at first for its own ping (doubling) to learn it is live.
PING_FIRST_WAIT = 0.005


class Subscription:
    """One Events.Subscribe stream of ``client``'s namespace, shared by its feeds.

    Events published before containerd has registered a new subscription are not delivered to
    it, so the stream is known live only once a ping it published itself comes back; until then
    a feed fires when it does, and its waiter looks again."""

    def __init__(self, client: api.Client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.feeds: set[Feed] = set()
        self.ready = threading.Event()
        self.closed = threading.Event()
        self.failed: Drmaa2Error | None = None
        self.token = secrets.token_hex(8).encode()
        ns = json.dumps(client.namespace)
        self.call = client.stream("events.Subscribe", api.msg(
            "containerd.services.events.v1.SubscribeRequest",
            filters=[f'namespace=={ns},topic~="^/tasks/"',
                     f'namespace=={ns},topic=="{PING_TOPIC}"']))
        for target in (self._pump, self._ping):
            threading.Thread(target=target, daemon=True, name=f"containerd-{target.__name__}").start()

    def feed(self, cids: Sequence[str]) -> Feed:
        f = Feed(self, set(cids))
        with self.lock:
            self.feeds.add(f)
        if self.failed is not None:
            f.event.set()  # its wait raises why
        return f

    def _fire(self, cid: str | None) -> None:
        with self.lock:
            for f in self.feeds:
                if cid is None or cid in f.cids:
                    f.event.set()

    def _pump(self) -> None:
        try:
            for envelope in self.call:
                if envelope.topic == PING_TOPIC:
                    if envelope.event.value == self.token and not self.ready.is_set():
                        self.ready.set()
                        self._fire(None)  # what changed before now is looked at again
                    continue
                self._fire(api.parse("containerd.events.TaskEvent",
                                     envelope.event.value).container_id)
        except grpc.RpcError as e:
            if not self.closed.is_set():
                self.failed = drmaa2_error(e, "watching containerd's task events",
                                           self.client.target)
        except Exception as e:  # noqa: BLE001 - a feed must learn that its stream is gone
            self.failed = DrmCommunicationError(f"watching containerd's task events: {e}")
        finally:
            if self.failed is None and not self.closed.is_set():
                self.failed = DrmCommunicationError(
                    f"containerd at {self.client.target} ended the event stream")
            self.ready.set()
            self._fire(None)

    def _ping(self) -> None:
        wait = PING_FIRST_WAIT
        any_msg = api.msg("google.protobuf.Any", type_url="types.pydrmaa2.org/watch-ready",
                          value=self.token)
        while not self.ready.is_set() and not self.closed.is_set():
            try:
                self.client.call("events.Publish", api.msg(
                    "containerd.services.events.v1.PublishRequest", topic=PING_TOPIC,
                    event=any_msg), timeout=10)
            except grpc.RpcError:
                return  # the stream fails as well, and says why
            except ValueError:
                return  # the channel was closed under it: the subscription is closing
            self.ready.wait(wait)
            wait = min(wait * 2, 1.0)

    def remove(self, f: Feed) -> None:
        with self.lock:
            self.feeds.discard(f)

    def close(self) -> None:
        self.closed.set()
        self.call.cancel()


class Feed(ChangeFeed):
    """Fires when a task event names one of its containers (or the subscription became live)."""

    def __init__(self, subscription: Subscription, cids: set[str]) -> None:
        self.subscription = subscription
        self.cids = cids
        self.event = threading.Event()

    def wait(self, timeout: float | None) -> bool:
        fired = self.event.wait(timeout)
        self.event.clear()
        if self.subscription.failed is not None:
            raise self.subscription.failed
        return fired

    def close(self) -> None:
        self.subscription.remove(self)
