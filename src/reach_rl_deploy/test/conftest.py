"""pytest fixtures of reach_rl_deploy's tests (test/support is importable: setup.cfg's pythonpath)."""
from policy_fixtures import policy_file  # noqa: F401
