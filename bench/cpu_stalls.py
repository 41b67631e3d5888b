"""Stalls on demand: real-time busy bursts that take CPUs away from a 1 kHz loop, as a loaded
or oversubscribed machine (another VM's work on the same host) does now and then.

One process per CPU in ``--cpus``, at SCHED_FIFO ``--priority`` (root or CAP_SYS_NICE; at 99
nothing else on that CPU runs during a burst, libfranka's loop included), busy for a uniform
0.2..``--burst-ms`` ms, then asleep for a uniform 0.2..1.8 x ``--gap-ms``, for ``--seconds``.

    python bench/cpu_stalls.py --cpus 0 1 --gap-ms 40 --burst-ms 4 --seconds 400 &   # medium
    python bench/libfranka_bench.py --policy runs/libfranka/policy.onnx --pin --targets 50
"""
import argparse
import os
import random
import sys
import time
from multiprocessing import Process


def stall(cpu: int, priority: int, gap_s: float, burst_s: float, seconds: float) -> None:
    """Bursts on ``cpu`` until ``seconds`` have passed (times in s)."""
    os.sched_setaffinity(0, {cpu})
    if priority > 0:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    rng = random.Random(cpu)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(rng.uniform(0.2, 1.8) * gap_s)
        busy_until = time.perf_counter() + rng.uniform(0.2e-3, burst_s)
        while time.perf_counter() < busy_until:
            pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, nargs="+", default=[0], help="CPUs to stall (default 0)")
    parser.add_argument("--priority", type=int, default=99, help="SCHED_FIFO priority (0: none)")
    parser.add_argument("--gap-ms", type=float, default=40.0, help="mean gap between bursts, ms")
    parser.add_argument("--burst-ms", type=float, default=4.0, help="longest burst, ms")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long, s")
    args = parser.parse_args(argv)
    workers = [Process(target=stall, args=(cpu, args.priority, args.gap_ms / 1e3,
                                           args.burst_ms / 1e3, args.seconds))
               for cpu in args.cpus]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return max(worker.exitcode or 0 for worker in workers)


if __name__ == "__main__":
    sys.exit(main())
