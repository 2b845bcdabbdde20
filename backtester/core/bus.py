"""A typed, synchronous, in-process message bus drained FIFO to quiescence.

Handlers are subscribed by message *type*, in the order the composition root chooses, and never call each
other: a handler only publishes, and `drain` delivers. A handler exception aborts the drain with the
message and the handler that failed, because a backtest that keeps going after a bug reports wrong P&L.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

M = TypeVar("M")
Handler = Callable[[Any], None]


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


class MessageBus:
    """FIFO delivery to every subscriber of a message's type, plus a deferred lane.

    `defer(handler, message)` schedules one handler for when the queue is empty: a module that must act
    on the settled state (a strategy reading its position after the bar's fills were booked) waits
    there, behind everything the current message caused, instead of seeing half-booked state.
    """

    __slots__ = ("_deferred", "_handlers", "_queue", "max_steps")

    def __init__(self, max_steps: int = 100_000) -> None:
        self._handlers: dict[type, tuple[Handler, ...]] = {}
        self._queue: deque[object] = deque()
        self._deferred: deque[tuple[Handler, object]] = deque()
        self.max_steps = max_steps

    def subscribe(self, message_type: type[M], handler: Callable[[M], None]) -> None:
        self._handlers[message_type] = (*self._handlers.get(message_type, ()), handler)

    def publish(self, message: object) -> None:
        self._queue.append(message)

    def defer(self, handler: Callable[[M], None], message: M) -> None:
        self._deferred.append((handler, message))

    @property
    def pending(self) -> int:
        """Messages queued and not yet delivered (the deferred lane not included)."""
        return len(self._queue)

    def deliver(self, message: object) -> None:
        """`publish(message)` then `drain()`, for a bus that is quiescent: the loop's per-tick call.

        Handing the message straight to its handlers skips a queue round trip on the hot path; what they
        publish is drained as usual, so the order of delivery is the same as publish-then-drain.
        """
        if self._queue or self._deferred:
            raise BusError("deliver() needs a drained bus; call drain() first")
        for handler in self._handlers.get(type(message), ()):
            try:
                handler(message)
            except BusError:
                raise
            except Exception as exc:
                self._clear()
                raise HandlerFailed(handler, message, exc) from exc
        if self._queue or self._deferred:
            self.drain()

    def drain(self) -> int:
        """Deliver queued messages, and those they cause, until none is left; a deferred handler runs
        only when the queue is empty. Returns the step count."""
        queue = self._queue
        deferred = self._deferred
        handlers = self._handlers
        steps = 0
        while queue or deferred:
            steps += 1
            if steps > self.max_steps:
                culprit = queue[0] if queue else deferred[0][1]
                self._clear()
                raise StepLimitExceeded(
                    f"drain exceeded {self.max_steps} steps (last: {type(culprit).__name__}); "
                    "a handler is probably re-publishing what it receives"
                )
            if queue:
                message = queue.popleft()
                targets = handlers.get(type(message), ())
            else:
                handler, message = deferred.popleft()
                targets = (handler,)
            for handler in targets:
                try:
                    handler(message)
                except BusError:
                    raise
                except Exception as exc:
                    self._clear()
                    raise HandlerFailed(handler, message, exc) from exc
        return steps

    def _clear(self) -> None:
        self._queue.clear()
        self._deferred.clear()
