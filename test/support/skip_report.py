"""``python test/support/skip_report.py build/*/pytest.xml ...``: how many tests each JUnit XML
file skipped, and why; ``make test`` prints it after the run, so no skip goes unread.

A skip here should need a real ROS 2 install (launch, ros2cli, franka_ros2), a CUDA GPU or Isaac
Gym; any other reason is worth a look."""
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Iterable, List, Tuple


def skips(paths: Iterable[str]) -> List[Tuple[str, str]]:
    """(test id, reason) of every skipped test case in the JUnit XML files ``paths``."""
    found = []
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            skipped = case.find("skipped")
            if skipped is not None:
                test_id = "%s::%s" % (case.get("classname", "?"), case.get("name", "?"))
                reason = skipped.get("message", "").strip()
                said = re.search(r"Skipped: (.*?)'?\)?$", (skipped.text or "").strip())
                if reason == "collection skipped" and said:  # a module skipped whole
                    reason = said.group(1)
                found.append((test_id, reason))
    return found


def main(argv: List[str]) -> int:
    found = skips(argv)
    print("== skipped: %d test(s)" % len(found))
    for reason, count in sorted(Counter(reason for _, reason in found).items()):
        tests = [test_id for test_id, r in found if r == reason]
        print("  %d x %s\n      %s" % (count, reason, "\n      ".join(tests)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
