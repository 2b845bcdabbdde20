"""A typed, synchronous, in-process message bus drained FIFO to quiescence.

Handlers are subscribed by message *type*, in the order the composition root chooses, and never call each
other: a handler only publishes, and `drain` delivers. A handler exception aborts the drain with the
message and the handler that failed, because a backtest that keeps going after a bug reports wrong P&L.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from backtester.core.clock import SimClock

M = TypeVar("M")
Handler = Callable[[Any], None]


# The route of a message type nobody subscribed to: no handlers in either lane.
_NO_ROUTE: tuple[tuple[Handler, ...], tuple[Handler, ...]] = ((), ())


class BusError(RuntimeError):
    pass


class StepLimitExceeded(BusError):
    pass


class HandlerFailed(BusError):
    """A handler raised; `message` is what it was handling."""

    def __init__(self, handler: Handler, message: object, cause: BaseException) -> None:
        name = getattr(handler, "__qualname__", repr(handler))
        super().__init__(
            f"{name} failed on {type(message).__name__}: {type(cause).__name__}: {cause}\n"
            f"  message: {message!r}"
        )
        self.handler_name = name
        self.message = message


class Subscription:
    """One handler's subscription to one message type. A paused subscription keeps its place in the
    delivery order, so a module can stop being called while it has nothing to do (the venue with no
    resting order) and resume later without changing who is called first."""

    __slots__ = ("_bus", "active", "bit", "handler", "message_type", "settled")

    def __init__(
        self, bus: MessageBus, message_type: type, handler: Handler, settled: bool, bit: int
    ) -> None:
        self._bus = bus
        self.message_type = message_type
        self.handler = handler
        self.settled = settled
        self.active = True
        # This subscription's bit in its type's mask of active subscriptions.
        self.bit = bit

    def pause(self) -> None:
        if self.active:
            self.active = False
            self._bus._toggle(self.message_type, self.bit)

    def resume(self) -> None:
        if not self.active:
            self.active = True
            self._bus._toggle(self.message_type, self.bit)


class MessageBus:
    """FIFO delivery to every subscriber of a message's type, plus a lane for *settled* subscribers.

    A settled subscriber gets a message only once everything published before it, and everything that
    caused, has been delivered: a strategy reads its position after the bar's fills were booked, not
    half-way through. When nothing is pending it is called at once, like any other subscriber.
    """

    __slots__ = (
        "_deferred",
        "_masks",
        "_queue",
        "_ready",
        "_routes",
        "_subscriptions",
        "_version",
        "listening",
        "max_steps",
    )

    def __init__(self, max_steps: int = 100_000) -> None:
        self._subscriptions: dict[type, list[Subscription]] = {}
        # Active (handlers, settled handlers) per type, set on every (un)pause: delivery reads
        # both with one lookup.
        self._routes: dict[type, tuple[tuple[Handler, ...], tuple[Handler, ...]]] = {}
        # Whether any subscription to the type is active (`listened`), as a mapping a publisher
        # can hold and read per message without a call.
        self.listening: dict[type, bool] = {}
        # Per type, the (handlers, settled handlers) of each mask of active subscriptions met so
        # far: a module that pauses and resumes once per order (the venue) finds them built.
        self._ready: dict[type, dict[int, tuple[tuple[Handler, ...], tuple[Handler, ...]]]] = {}
        self._masks: dict[type, int] = {}
        self._queue: deque[object] = deque()
        self._deferred: deque[tuple[Handler, object]] = deque()
        # Moves whenever any type's handlers change: `deliver_each` holds a type's handlers
        # while it stays put.
        self._version = 0
        self.max_steps = max_steps

    def subscribe(
        self, message_type: type[M], handler: Callable[[M], None], *, settled: bool = False
    ) -> Subscription:
        subscriptions = self._subscriptions.setdefault(message_type, [])
        subscription = Subscription(self, message_type, handler, settled, 1 << len(subscriptions))
        subscriptions.append(subscription)
        self._ready[message_type] = {}  # the masks meant other subscriptions
        self._masks[message_type] = self._masks.get(message_type, 0) | subscription.bit
        self._toggle(message_type, 0)
        return subscription

    def _toggle(self, message_type: type, bit: int) -> None:
        """Flip one subscription's bit in its type's mask and set the type's handlers for it."""
        mask = self._masks[message_type] ^ bit
        self._masks[message_type] = mask
        ready = self._ready[message_type]
        both = ready.get(mask)
        if both is None:
            subscriptions = self._subscriptions[message_type]
            both = ready[mask] = (
                tuple([s.handler for s in subscriptions if s.active and not s.settled]),
                tuple([s.handler for s in subscriptions if s.active and s.settled]),
            )
        self._routes[message_type] = both
        self.listening[message_type] = bool(both[0] or both[1])
        self._version += 1

    def publish(self, message: object) -> None:
        self._queue.append(message)

    def publisher(self) -> Callable[[object], None]:
        """`publish` as the queue's own append: a module that publishes on every order holds it
        and skips a Python call per message (the queue is never replaced, only cleared)."""
        return self._queue.append

    def listened(self, message_type: type) -> bool:
        """Whether any subscription to the type is active: a publisher may skip building a message
        that nobody would be handed."""
        return self.listening.get(message_type, False)

    @property
    def pending(self) -> int:
        """Messages queued and not yet delivered (the deferred lane not included)."""
        return len(self._queue)

    def deliver(self, message: object) -> None:
        """`publish(message)` then `drain()`, for a bus that is quiescent: the loop's per-tick call.

        Handing the message straight to its handlers skips a queue round trip on the hot path; what they
        publish is drained as usual, so the order of delivery is the same as publish-then-drain.
        """
        queue = self._queue
        if queue or self._deferred:
            raise BusError("deliver() needs a drained bus; call drain() first")
        kind = type(message)
        handlers, settled = self._routes.get(kind, _NO_ROUTE)
        if handlers:
            version = self._version
            for handler in handlers:
                try:
                    handler(message)
                except BusError:
                    raise
                except Exception as exc:
                    raise self._failed(handler, message, exc) from exc
            if self._version != version:
                # The settled handlers as they are once the others ran.
                settled = self._routes.get(kind, _NO_ROUTE)[1]
        if settled:
            if queue:
                for handler in settled:
                    self._deferred.append((handler, message))
            else:
                for handler in settled:
                    try:
                        handler(message)
                    except BusError:
                        raise
                    except Exception as exc:
                        raise self._failed(handler, message, exc) from exc
        if queue or self._deferred:
            self.drain()

    def deliver_each(self, clock: SimClock, ticks: Iterable[tuple[int, object]]) -> int:
        """For each (time, message): the clock set to the time, then `deliver(message)`; returns
        the messages delivered. The loop's per-bar work, with `deliver` and the clock's advance
        written out: on a dense run they are called for every bar of the series.

        The bus must be drained on entry; it is again after each message (`drain` runs until
        nothing is left, or raises), so that is checked once, not per message. Only this loop
        moves the clock while it runs, so the time it last set is held in a local.

        A run of messages of one type (the bars) finds the same handlers each time until a
        handler changes them, which moves the bus's version: they are looked up again only
        then. Where the type's only active subscriber is one settled handler (a dense run's
        strategy while no order rests), nothing is queued when it is reached, so it is called
        at once, as `deliver` would."""
        queue = self._queue
        deferred = self._deferred
        if queue or deferred:
            raise BusError("deliver() needs a drained bus; call drain() first")
        routes = self._routes
        drain = self.drain
        count = 0
        now = clock.now
        held: type | None = None  # the type whose handlers are held, as of `version`
        version = -1
        before: tuple[Handler, ...] = ()
        only: Handler | None = None
        # Counted by `enumerate`, in C: a dense run's loop takes a line less per bar.
        for count, (ts, message) in enumerate(ticks, 1):  # noqa: B007 (the count returned)
            if ts < now:
                clock.advance_to(ts)  # refuses, with the clock's own error
            clock.now = now = ts
            kind = type(message)
            if kind is not held or self._version != version:
                held = kind
                version = self._version
                before, after = routes.get(kind, _NO_ROUTE)
                only = after[0] if not before and len(after) == 1 else None
            if only is not None:
                try:
                    only(message)
                except BusError:
                    raise
                except Exception as exc:
                    raise self._failed(only, message, exc) from exc
            else:
                for handler in before:
                    try:
                        handler(message)
                    except BusError:
                        raise
                    except Exception as exc:
                        raise self._failed(handler, message, exc) from exc
                # As `deliver` does: the settled handlers as they are once the others ran.
                settled = routes.get(kind, _NO_ROUTE)[1]
                if settled:
                    if queue:
                        for handler in settled:
                            deferred.append((handler, message))
                    else:
                        for handler in settled:
                            try:
                                handler(message)
                            except BusError:
                                raise
                            except Exception as exc:
                                raise self._failed(handler, message, exc) from exc
            if queue or deferred:
                drain()
        return count

    def _failed(self, handler: Handler, message: object, cause: Exception) -> HandlerFailed:
        """Abandon the drain: nothing queued may run after a failure."""
        self._clear()
        return HandlerFailed(handler, message, cause)

    def drain(self) -> int:
        """Deliver queued messages, and those they cause, until none is left; a deferred handler runs
        only when the queue is empty. Returns the step count."""
        queue = self._queue
        deferred = self._deferred
        routes = self._routes
        popleft = queue.popleft
        defer = deferred.append
        max_steps = self.max_steps
        steps = 0
        while True:
            # The queue first, to empty; then one deferred handler, which may queue more.
            while queue:
                steps += 1
                if steps > max_steps:
                    raise self._step_limit(queue[0])
                message = popleft()
                targets, settled = routes.get(type(message), _NO_ROUTE)
                if settled:
                    for handler in settled:
                        defer((handler, message))
                for handler in targets:
                    try:
                        handler(message)
                    except BusError:
                        raise
                    except Exception as exc:
                        raise self._failed(handler, message, exc) from exc
            if not deferred:
                return steps
            steps += 1
            if steps > max_steps:
                raise self._step_limit(deferred[0][1])
            handler, message = deferred.popleft()
            try:
                handler(message)
            except BusError:
                raise
            except Exception as exc:
                raise self._failed(handler, message, exc) from exc

    def _step_limit(self, culprit: object) -> StepLimitExceeded:
        self._clear()
        return StepLimitExceeded(
            f"drain exceeded {self.max_steps} steps (last: {type(culprit).__name__}); "
            "a handler is probably re-publishing what it receives"
        )

    def _clear(self) -> None:
        self._queue.clear()
        self._deferred.clear()
