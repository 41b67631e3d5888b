"""pytest setup of reach_rl_core's tests: the repository's shared test support importable."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..",
                                "test", "support"))

