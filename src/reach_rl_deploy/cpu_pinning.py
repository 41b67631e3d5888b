"""Pin a whole process (every thread it has, and so every thread they start) to one CPU.

A 1 kHz loop that shares cores with other busy processes is preempted and migrated; on a
robot computer the control loop gets a core of its own (ideally an isolated one,
``isolcpus=``). Linux only; each thread's mask is set, since an affinity call made by one
thread applies to that thread alone.
"""
import os


def pin_process(cpu: int) -> None:
    """Run every thread of this process on CPU ``cpu`` (0-based); ValueError if there is none."""
    available = os.sched_getaffinity(0)
    if cpu not in available:
        raise ValueError("cpu %d is not available to this process (it may use %s)"
                         % (cpu, sorted(available)))
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except ProcessLookupError:  # the thread ended meanwhile
            pass
