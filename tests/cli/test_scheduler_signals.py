"""The daemon's signal handler against the moment it can arrive: in the main thread, between two
bytecodes of whatever it was doing, e.g. inside ``Event.wait`` while that holds the event's lock.

The fresh-clone suite hung once on Ctrl-C right after the first pass (``test_terminal``'s
``test_run_stops_on_a_signal_with_its_exit_code[2-130]``): the handler called
``stop_event.set()``, which takes the same non-reentrant lock."""

from __future__ import annotations

import signal
import threading

from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from rotator.scheduler import Scheduler


def _scheduler(tmp_path) -> Scheduler:
    config = parse({"store": {"kind": "file", "path": str(tmp_path / "s.db")}}, "test.toml")
    return Scheduler(Engine.from_config(config, audit=Audit(None)), tick=60)


def test_a_signal_arriving_while_the_stop_event_is_locked_does_not_hang(tmp_path):
    scheduler = _scheduler(tmp_path)
    lock = scheduler.stop_event._cond  # the lock ``Event.wait`` holds at its edges
    returned = threading.Event()

    def main_thread_interrupted_inside_wait() -> None:
        with lock:  # as the main thread is, between the bytecodes of Event.wait
            scheduler._on_signal(signal.SIGINT, None)
            returned.set()

    worker = threading.Thread(target=main_thread_interrupted_inside_wait, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert returned.is_set(), "the signal handler blocked on the lock its own thread holds"
    assert scheduler.stop_event.wait(timeout=5), "the stop was never signalled"
    assert scheduler.exit_code == 130


def test_sigterm_stops_with_zero_and_run_forever_returns(tmp_path):
    scheduler = _scheduler(tmp_path)
    scheduler._on_signal(signal.SIGTERM, None)
    assert scheduler.run_forever() == 0
