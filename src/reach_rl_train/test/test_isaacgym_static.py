"""Static checks for the code that must run inside an Isaac Gym (Python 3.8) environment:
vermin for Python 3.8 syntax/stdlib, mypy for the Isaac Gym API calls of the backend.

Each check skips, saying why, when its tool is not installed
(``pip install vermin isaacgym-stubs 'mypy<1.16'``).
"""
import ast
import glob
import os
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))  # the repository
TRAIN = "src/reach_rl_train/reach_rl_train"
BACKEND = TRAIN + "/isaacgym_backend.py"

# gymtorch ships no stubs: its two functions, as Isaac Gym Preview 4 defines them.
GYMTORCH_STUB = """from typing import Optional, Tuple

import torch

from isaacgym import gymapi

def wrap_tensor(gym_tensor: gymapi.Tensor, offsets: Optional[Tuple[int, ...]] = ...,
                counts: Optional[Tuple[int, ...]] = ...) -> torch.Tensor: ...
def unwrap_tensor(torch_tensor: torch.Tensor) -> gymapi.Tensor: ...
"""


def _tool(name):
    """The console script ``name`` next to this interpreter, else on PATH, else None."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.isfile(here) else shutil.which(name)


def _shared_modules(paths):
    """The reach_rl_core / reach_rl_deploy modules (files, relative to ROOT) that ``paths``
    import, directly or through each other."""
    found = set()
    todo = list(paths)
    while todo:
        with open(os.path.join(ROOT, todo.pop())) as f:
            tree = ast.parse(f.read())
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
                names.extend("%s.%s" % (node.module, a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                names.extend(a.name for a in node.names)
        for name in names:
            parts = name.split(".")
            if parts[0] not in ("reach_rl_core", "reach_rl_deploy") or len(parts) < 2:
                continue
            # the module's file, in a subpackage too (reach_rl_deploy.ros_plumbing.qos)
            path = "src/%s/%s.py" % (parts[0], "/".join(parts))
            if os.path.isfile(os.path.join(ROOT, path)) and path not in found:
                found.add(path)
                todo.append(path)
    return sorted(found)


def py38_paths():
    """What must run inside an Isaac Gym environment: the training package and every
    reach_rl_core module it imports (franka_model, policy_file, ...)."""
    train = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, TRAIN, "*.py")))
    return [TRAIN] + _shared_modules(train)


def test_py38_paths_follow_the_training_packages_imports():
    paths = py38_paths()
    assert "src/reach_rl_core/reach_rl_core/franka_model.py" in paths
    assert "src/reach_rl_core/reach_rl_core/policy_file.py" in paths
    # train_node's ROS helpers, in a subpackage of reach_rl_deploy
    assert any(p.startswith("src/reach_rl_deploy/reach_rl_deploy/ros_plumbing/") for p in paths)
    assert all(os.path.isfile(os.path.join(ROOT, p)) for p in paths[1:])


def test_py38_compatible_per_vermin():
    vermin = _tool("vermin")
    if vermin is None:
        pytest.skip("vermin not installed (pip install vermin)")
    out = subprocess.run([vermin, "-t=3.8-", "--no-tips", "--violations", "--eval-annotations",
                          *py38_paths()], cwd=ROOT, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "not met" not in text, text


def _isaacgym_stub_files():
    """gymapi.pyi of the installed isaacgym-stubs distribution, or None."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return None
    try:
        dist = metadata.distribution("isaacgym-stubs")
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "gymapi.pyi":
            return str(f.locate())
    return None


def _repaired_stubs(dest, gymapi_pyi):
    """A stub package ``isaacgym`` in ``dest``: the published gymapi.pyi with its one syntax
    error fixed (a property named ``lambda``, a keyword: renamed ``lambda_``; nothing else
    changes) plus a gymtorch stub. Returns the folder for MYPYPATH."""
    package = os.path.join(dest, "isaacgym")
    os.makedirs(package)
    with open(gymapi_pyi) as f:
        text = f.read()
    text = re.sub(r"(?m)^(\s+def )lambda\(", r"\1lambda_(", text)
    with open(os.path.join(package, "gymapi.pyi"), "w") as f:
        f.write(text)
    with open(os.path.join(package, "gymtorch.pyi"), "w") as f:
        f.write(GYMTORCH_STUB)
    with open(os.path.join(package, "__init__.pyi"), "w") as f:
        f.write("from . import gymapi as gymapi\nfrom . import gymtorch as gymtorch\n")
    return dest


def test_backend_type_checks_against_isaacgym_stubs(tmp_path):
    if find_spec("mypy") is None:
        pytest.skip("mypy not installed (pip install 'mypy<1.16': newer mypy cannot target 3.8)")
    gymapi_pyi = _isaacgym_stub_files()
    if gymapi_pyi is None:
        pytest.skip("isaacgym-stubs not installed (pip install isaacgym-stubs)")
    env = dict(os.environ)
    env["MYPYPATH"] = _repaired_stubs(str(tmp_path), gymapi_pyi)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--python-version", "3.8",
         "--ignore-missing-imports", "--follow-imports=silent", "--no-incremental", BACKEND],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    if "3.8 is not supported" in text:
        pytest.skip("this mypy cannot target Python 3.8 (pip install 'mypy<1.16'): " + text.strip())
    assert out.returncode == 0, text
    assert "Success: no issues found" in text
