"""pytest setup of reach_rl_sim's tests (the deploy node on the simulated robots): the shared test
support importable, and the trained policies they deploy."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..",
                                "test", "support"))

from policy_fixtures import libfranka_policy, policy_file, reach_policy  # noqa: E402,F401
