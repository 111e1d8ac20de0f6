"""The pauses sliced tasks take (analytics.loop_turn): between two slices of work the loop must
poll its sockets and fire due timers, and the pause must return even while some socket is
always ready. The two pauses used before failed one of these each: `gevent.sleep(0)` resumed
the caller before any timer (the fan-out and window reads "paused" with it and still held the
loop), and `gevent.idle()` never returned while a socket stayed ready (the listener, log reader
and recorder paused with it: under steady enough traffic they would have stopped). No timing
thresholds: the tests count what ran between slices; the timeouts only turn a hang into a
failure. A turn share (TurnShare) must serve a crowd over several turns, in order, with the loop
polling and firing timers between its shares."""
from __future__ import annotations

import gevent
import gevent.socket
import pytest

from analytics.loop_turn import TurnShare, next_turn_for, turn_share_for, when_quiet, when_quiet_for
from tests.helpers import hold_the_loop_on_purpose

SLICES = 20


@pytest.mark.parametrize("pause_for", [next_turn_for, when_quiet_for])
def test_a_pause_lets_due_timers_and_ready_sockets_run_while_a_socket_is_always_ready(pause_for):
    pause = pause_for("gevent")
    a, b = gevent.socket.socketpair()
    volleys = [0]

    def ping_pong(sock, serve_first: bool) -> None:  # keeps a socket ready at every turn of the loop
        if serve_first:
            sock.send(b"x")
        while True:
            sock.recv(1)
            volleys[0] += 1
            sock.send(b"x")

    churn = [gevent.spawn(ping_pong, a, True), gevent.spawn(ping_pong, b, False)]
    gevent.sleep(0.01)  # the volley is under way
    timer_fired_after_slice = []
    done = []

    def work() -> None:
        gevent.spawn_later(0.001, lambda: timer_fired_after_slice.append(len(done)))
        for i in range(SLICES):
            hold_the_loop_on_purpose(0.002)  # the timer is due from the first slice on
            done.append(i)
            volleys_before = volleys[0]
            pause()
            volleys_between.append(volleys[0] - volleys_before)

    volleys_between: list[int] = []
    try:
        with gevent.Timeout(10, AssertionError("the pause never returned while a socket stayed ready")):
            gevent.spawn(work).get()
    finally:
        gevent.killall(churn)
        a.close()
        b.close()
    assert done == list(range(SLICES))
    # The timer ran at the first pause after it was due (not after all the work, as with sleep(0)).
    assert timer_fired_after_slice == [1]
    # And the ready socket was served at every pause after the first. libev runs a turn's due
    # timers before its ready sockets (the pause's own timer among them), so the socket found
    # ready at one turn is served while the next slice waits its turn: at the first pause there is
    # none yet.
    assert len(volleys_between) == SLICES and min(volleys_between[1:]) >= 1


def test_waiting_for_a_quiet_loop_lets_everything_ready_go_first():
    """A background task waiting for quiet resumes only after the greenlets that were ready when
    it paused have all run (and, with nothing else to do, at once: no deadline wait)."""
    ran = []
    ready = [gevent.spawn(ran.append, i) for i in range(5)]  # ready, not yet run
    with gevent.Timeout(10, AssertionError("an idle loop did not resume the quiet wait")):
        when_quiet(max_wait_s=60)  # the deadline is far: only a quiet loop can resume it
    assert ran == list(range(5))
    gevent.joinall(ready)


@pytest.mark.parametrize("pause_for", [next_turn_for, when_quiet_for])
def test_threading_mode_only_hands_over_the_gil(pause_for):
    pause_for("threading")()  # returns at once: no loop to wait for


CROWD = 20
WORK_S = 0.001  # each piece of the crowd's work holds the loop at least this long


def test_a_crowd_is_served_a_share_per_turn_in_order_with_timers_firing_in_between():
    """20 pieces of work of >= 1 ms arriving at once, with a 2 ms share per turn: at most 3 run
    in one turn of the loop (the share is checked before each piece: two fit, a third may start
    just inside it), in arrival order, and a timer due meanwhile fires before the crowd is done."""
    share = TurnShare(budget_s=0.002)
    loop = gevent.get_hub().loop
    turns, order, timer_fired_after = [], [], []

    def piece(n: int) -> None:
        share.enter()
        turns.append(loop.iteration)
        order.append(n)
        hold_the_loop_on_purpose(WORK_S)

    crowd = [gevent.spawn(piece, n) for n in range(CROWD)]
    gevent.spawn_later(0, lambda: timer_fired_after.append(len(order)))
    with gevent.Timeout(10, AssertionError("the crowd was never all served")):
        gevent.joinall(crowd, raise_error=True)
    assert order == list(range(CROWD))
    per_turn = [turns.count(t) for t in sorted(set(turns))]
    assert max(per_turn) <= 3 and len(per_turn) >= CROWD // 3, per_turn
    assert timer_fired_after and timer_fired_after[0] < CROWD


def test_a_caller_killed_while_it_waits_for_its_share_leaves_the_rest_served():
    share = TurnShare(budget_s=0.0)  # every caller after a turn's first waits for a later turn
    served = []

    def piece(n: int) -> None:
        share.enter()
        served.append(n)

    crowd = [gevent.spawn(piece, n) for n in range(6)]
    gevent.sleep(0)  # all have started: the first is served, the other five wait
    gevent.kill(crowd[2])
    with gevent.Timeout(10, AssertionError("the queue stopped at the killed caller")):
        gevent.joinall(crowd)
    assert served == [0, 1, 3, 4, 5]


def test_a_turn_share_in_threading_mode_returns_at_once():
    enter = turn_share_for("threading")
    assert enter() is None
