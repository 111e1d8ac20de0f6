"""How long-running work on the gevent loop steps aside so sockets, requests and timers run,
then carries on. Two pauses:
- `next_turn`: one turn of the loop, then on. For work someone is waiting for right now (a
  delivery to many clients, the parse of a log read for delivery, live or for a resuming
  client, a long window read inside a request): it takes its turns like everything else.
- `when_quiet`: until the loop has nothing else to do, or QUIET_WAIT_MAX_S at most. Between the
  steps of the stream's tasks on the loop (the listener, the log reader between two reads; under
  gevent the recorder has a thread of its own: stream/recorder_thread.py): they run in the
  loop's quiet moments, so a request or a delivery does not wait behind a slice of them, and a
  loop that is never quiet still gives them a slice every QUIET_WAIT_MAX_S.

Measured here (2026-12-03; a greenlet doing thirty 2 ms slices with a pause after each, a 5 ms
timer beside it, with and without two greenlets ping-ponging on a socket pair so that some
socket is always ready):
- `gevent.sleep(0)` queues the caller as a callback, and the loop runs queued callbacks for
  up to 50 at a time before it looks at the clock: the caller comes straight back. The timer
  woke 0 times in the 60 ms; every earlier "pause" of ours that used it held the loop anyway.
- `gevent.idle()` waits until no socket or timer is pending: with a socket always ready it
  never returned (5 s, no slice done). Under enough traffic a task pausing with it alone starves
  (when_quiet adds the deadline).
- a wait on a timer due now (below) resumes on the loop's next turn, after it has polled the
  sockets (with a zero timeout: a due timer makes libev poll without waiting) and run what was
  ready and due: the timer woke 8 times in 62 ms, each pause took 0.03-0.1 ms, and it returned
  under the socket churn too. A positive sleep would be the same but for a 1 ms poll wait when
  nothing is ready (libev's epoll minimum): 30 pauses cost 35 ms.

And one share: `TurnShare`, for work that arrives in crowds rather than work that runs long
(requests, Socket.IO connects): each turn serves what fits in CROWD_SHARE_S, the rest waits its
turn, in order.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from weakref import WeakKeyDictionary

from gevent import get_hub, getcurrent
from gevent.hub import Waiter

from analytics.counters import LOOP_DEFERRED


def next_turn() -> None:
    """Let the gevent loop take one turn (poll sockets, fire due timers, run ready greenlets),
    then resume. Call from a greenlet."""
    hub = get_hub()
    with hub.loop.timer(0) as due_now:
        hub.wait(due_now)


# A background task waits this long at most for a quiet loop: on a loop that is never quiet it
# still gets a slice (the listener's are 2 ms) after every turn that ends past this deadline.
QUIET_WAIT_MAX_S = 0.005

# The two watchers of a quiet wait, made once per greenlet (and wait length): the stream tasks
# pause up to tens of thousands of times a second at full ingest, and making them afresh cost
# 5.1 us a pause against 2.4 us reused (gevent.idle(), one watcher made afresh: 2.3-2.8 us). Per greenlet, because
# one task's wait must not restart another's (the listener's and the log reader's).
_watchers: WeakKeyDictionary = WeakKeyDictionary()


def when_quiet(max_wait_s: float = QUIET_WAIT_MAX_S) -> None:
    """Wait until the gevent loop is idle (no socket, timer or greenlet ready) or about
    `max_wait_s` has passed, whichever comes first, then resume. Call from a greenlet. (The
    deadline counts from the loop's clock, read at the start of its turn: after a long turn it
    may be due at once, and the task has then waited that turn anyway.)"""
    hub = get_hub()
    mine = _watchers.setdefault(getcurrent(), {})
    pair = mine.get(max_wait_s)
    if pair is None:
        pair = mine[max_wait_s] = (hub.loop.idle(), hub.loop.timer(max_wait_s))
    quiet, deadline = pair
    waiter = Waiter(hub)
    quiet.start(waiter.switch, None)
    deadline.start(waiter.switch, None)
    try:
        waiter.get()
    finally:
        quiet.stop()
        deadline.stop()


# Of each loop turn, work that arrives in crowds takes this long at most; the rest of the crowd
# waits for the next turns. 100 clients connecting within ~120 ms made loop turns of 15-38 ms
# (2026-12-03, 10,000 ev/s): 17-30 WebSocket requests served back to back, 0.6-1.6 ms of CPU
# each (engine.io's handshake and socket set-up), their Socket.IO connects (~0.6 ms) after them.
CROWD_SHARE_S = 0.002


class TurnShare:
    """A share of each loop turn for work that arrives in crowds: `enter()` returns at once while
    this turn's share lasts, else it queues the caller, and the queue is let through in order at
    the next turns, `budget_s` of it per turn. So when 100 clients connect at once, their
    handlers are spread over turns instead of holding the loop (and every socket, request and
    timer on it) for all of them. Call `enter` from a greenlet, before the work."""

    def __init__(self, budget_s: float = CROWD_SHARE_S):
        self.budget_s = budget_s
        self._turn = -1  # the loop iteration whose share is being spent
        self._since = 0.0  # when its first piece of work began
        self._waiting: deque[Waiter] = deque()
        self._next: object | None = None  # the timer that lets the queue through at the next turn

    def enter(self) -> None:
        hub = get_hub()
        if not self._waiting and self._take_share(hub.loop):
            return
        LOOP_DEFERRED.inc()
        waiter = Waiter(hub)
        self._waiting.append(waiter)
        if self._next is None:
            self._at_next_turn(hub.loop)
        waiter.get()

    def _take_share(self, loop) -> bool:
        """Whether this turn's share has room for one more piece; the first piece of a turn starts
        its share."""
        if loop.iteration != self._turn:
            self._turn, self._since = loop.iteration, time.perf_counter()
            return True
        return time.perf_counter() - self._since < self.budget_s

    def _at_next_turn(self, loop) -> None:
        self._next = loop.timer(0)  # due now: fires after the loop's next poll, as in next_turn
        self._next.start(self._let_through, loop)

    def _let_through(self, loop) -> None:
        # In the hub, on a turn whose share nobody has spent yet (while some wait, all newcomers
        # queue). Each switch runs a queued caller until it next waits, then comes back here.
        while self._waiting and self._take_share(loop):
            self._waiting.popleft().switch(None)  # a caller killed meanwhile just ignores it
        self._next = None
        if self._waiting:
            self._at_next_turn(loop)


def _no_share() -> None:
    pass  # threading mode: the OS schedules threads; there is no one loop to share


def turn_share_for(async_mode: str) -> Callable[[], None]:
    """A TurnShare's `enter` for `async_mode`."""
    return TurnShare().enter if async_mode == "gevent" else _no_share


def _hand_over_gil() -> None:
    time.sleep(0)  # threading mode: the OS schedules; a pause only hands over the GIL


def next_turn_for(async_mode: str) -> Callable[[], None]:
    """`next_turn` for `async_mode`."""
    return next_turn if async_mode == "gevent" else _hand_over_gil


def when_quiet_for(async_mode: str) -> Callable[[], None]:
    """`when_quiet` for `async_mode`."""
    return when_quiet if async_mode == "gevent" else _hand_over_gil
