"""pytest setup of the repository-wide checks: the shared test support importable."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "support"))
