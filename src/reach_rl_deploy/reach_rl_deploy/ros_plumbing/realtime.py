"""Pin a whole process (every thread it has, and so every thread they start) to one CPU, and
run it under the real-time scheduler.

A 1 kHz loop that shares cores with other busy processes is preempted and migrated; on a
robot computer the control loop gets a core of its own (ideally an isolated one,
``isolcpus=``). Linux only; each thread's setting is made, since an affinity or scheduler
call made by one thread applies to that thread alone.
"""
import os
from contextlib import contextmanager
from typing import Callable, Iterator


def _threads() -> Iterator[int]:
    for tid in os.listdir("/proc/self/task"):
        yield int(tid)


def _each_thread(apply: Callable[[int], None]) -> None:
    for tid in _threads():
        try:
            apply(tid)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def pin_process(cpu: int) -> None:
    """Run every thread of this process on CPU ``cpu`` (0-based); ValueError if there is none."""
    available = os.sched_getaffinity(0)
    if cpu not in available:
        raise ValueError("cpu %d is not available to this process (it may use %s)"
                         % (cpu, sorted(available)))
    _each_thread(lambda tid: os.sched_setaffinity(tid, {cpu}))


def realtime_process(priority: int) -> None:
    """Run every thread of this process under SCHED_FIFO at ``priority`` (threads started later
    inherit it). A 1 kHz Python loop also waits for the interpreter lock held by the process's
    other threads: were those ordinary threads, any busy process could preempt them while
    they hold it. PermissionError without the privilege (root or CAP_SYS_NICE)."""
    _each_thread(lambda tid: os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority)))


def realtime_process_where_permitted(priority: int, warn: Callable[[str], None], who: str,
                                     consequence: str) -> bool:
    """:func:`realtime_process` at ``priority`` (0 or less: nothing); without the privilege,
    ``warn`` says "no SCHED_FIFO <priority> for <who> (<why>): <consequence>". True where every
    thread now runs SCHED_FIFO."""
    if priority <= 0:
        return False
    try:
        realtime_process(priority)
    except PermissionError as exc:
        warn("no SCHED_FIFO %d for %s (%s): %s" % (priority, who, exc, consequence))
        return False
    return True


@contextmanager
def threads_started_realtime(priority: int):
    """Threads started inside this block run under SCHED_FIFO at ``priority``; the calling
    thread returns to the ordinary scheduler after it. Linux threads inherit their creator's
    scheduler, so this gives a thread that a library starts (franky's 1 kHz control thread) a
    real-time priority while the Python threads that call the library stay ordinary ones and
    can never starve it, whatever they do while holding the interpreter lock. PermissionError
    without the privilege (root or CAP_SYS_NICE)."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
