"""pin_process: every thread of the process, and the threads it starts later, on one CPU."""
import os
import subprocess
import sys
import textwrap

import pytest

from reach_rl_deploy.ros_plumbing.realtime import pin_process

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


def test_all_threads_and_later_ones_run_on_the_cpu():
    cpu = max(os.sched_getaffinity(0))
    script = textwrap.dedent("""
        import os, sys, threading, time
        from reach_rl_deploy.ros_plumbing.realtime import pin_process
        stop = threading.Event()
        early = threading.Thread(target=stop.wait); early.start()  # exists before pinning
        pin_process(%d)
        late = threading.Thread(target=stop.wait); late.start()
        masks = {tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}
        stop.set()
        print(len(masks), set(map(tuple, masks.values())))
    """ % cpu)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    count, masks = out.stdout.split(" ", 1)
    assert int(count) == 3  # main, early, late
    assert masks.strip() == "{(%d,)}" % cpu


def test_a_cpu_the_process_may_not_use_is_refused():
    with pytest.raises(ValueError, match="cpu 4096 is not available"):
        pin_process(4096)
