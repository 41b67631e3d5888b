"""pytest setup of reach_rl_deploy's tests: the repository's shared test support importable."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..",
                                "test", "support"))
from policy_fixtures import policy_file  # noqa: E402,F401
