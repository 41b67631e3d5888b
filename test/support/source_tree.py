"""Where the repository and its four packages' source trees are (what the tests run)."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("reach_rl_core", "reach_rl_deploy", "reach_rl_train", "reach_rl_sim")
# Each package's folder holds its Python package: first on a child process's PYTHONPATH, these
# make it run the sources under test whatever is installed.
SOURCE_ROOTS = [str(REPO / "src" / name) for name in PACKAGES]


def source_env() -> dict:
    """This process's environment with the packages' sources importable first, unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(SOURCE_ROOTS + [env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env
