"""pytest fixtures of reach_rl_sim's tests, the deploy node on the simulated robots: the policies
they deploy (test/support is importable: setup.cfg's pythonpath)."""
from policy_fixtures import (libfranka_policy, libfranka_pose_policy, policy_file,  # noqa: F401
                             reach_policy, reach_pose_policy)
