"""The packages' layering holds in their imports, and package.xml declares what they import.

``lint-imports`` (import-linter, contracts in .importlinter) runs on the tree as it is, then on
copies with a forbidden import planted, which it must refuse. Then each package's imports, read
by grimp, must be declared in its package.xml: the dependency graph rosdep and colcon see is
the one the code has.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from source_tree import PACKAGES, REPO

pytest.importorskip("importlinter", reason="import-linter is not installed (make setup)")

# Python modules whose rosdep key is not their own name. PIP_ONLY: no rosdep key; installed with
# pip as the package.xml comments and docs/install.md say.
ROSDEP_KEY = {"numpy": "python3-numpy", "yaml": "python3-yaml", "torch": "python3-torch",
              "matplotlib": "python3-matplotlib", "onnxruntime": "python3-onnxruntime-pip"}
PIP_ONLY = {"onnx", "omegaconf", "franky", "pylibfranka", "tensorboard", "isaacgym"}


def lint_imports(source_roots):
    """lint-imports over the packages found in ``source_roots``; (exit status, output)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(source_roots))
    tool = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    done = subprocess.run([tool, "--config", str(REPO / ".importlinter"), "--no-cache"],
                          cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def planted(tmp_path, package, module, line):
    """Copies of the four packages with ``line`` appended to ``package``/``module``.py."""
    roots = []
    for name in PACKAGES:
        shutil.copytree(REPO / "src" / name / name, tmp_path / name / name)
        roots.append(str(tmp_path / name))
    with open(tmp_path / package / package / (module + ".py"), "a") as f:
        f.write("\n" + line + "\n")
    return roots


def test_the_tree_keeps_every_contract():
    status, output = lint_imports([str(REPO / "src" / name) for name in PACKAGES])
    assert status == 0, output
    assert "0 broken" in output


@pytest.mark.parametrize("package, module, line, broken", [
    ("reach_rl_core", "braking", "import torch", "reach_rl_core is numpy only"),
    ("reach_rl_core", "policy_file", "import rclpy", "reach_rl_core is numpy only"),
    ("reach_rl_deploy", "deploy_controller", "from reach_rl_train import config", "Layers"),
    ("reach_rl_core", "franka_model", "import reach_rl_deploy", "Layers"),
    ("reach_rl_deploy", "target_runner", "import torch", "reach_rl_deploy never imports training"),
    ("reach_rl_deploy", "deploy_node", "import reach_rl_deploy.testing.gil_stall",
     "never import reach_rl_deploy.testing"),
])
def test_a_planted_import_breaks_its_contract(tmp_path, package, module, line, broken):
    status, output = lint_imports(planted(tmp_path, package, module, line))
    assert status != 0, output
    assert any(broken in l and "BROKEN" in l for l in output.splitlines()), output


def declared(package):
    """exec_depend keys of ``package``'s package.xml."""
    root = ET.parse(str(REPO / "src" / package / "package.xml")).getroot()
    return {e.text.strip() for e in root.findall("exec_depend")}


def imported(package):
    """Top-level modules ``package`` imports, other than itself and the standard library."""
    import grimp

    graph = grimp.build_graph(package, *[p for p in PACKAGES if p != package],
                              include_external_packages=True)
    found = set()
    for module in graph.find_children(package) | {package}:
        for descendant in {module} | graph.find_descendants(module):
            found |= {m.split(".")[0] for m in graph.find_modules_directly_imported_by(descendant)}
    return {m for m in found - {package} if m not in sys.stdlib_module_names}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_xml_declares_every_import(package):
    missing = sorted(m for m in imported(package) - PIP_ONLY
                     if ROSDEP_KEY.get(m, m) not in declared(package))
    assert not missing, "%s imports %s, which its package.xml does not declare (exec_depend %s)" % (
        package, missing, [ROSDEP_KEY.get(m, m) for m in missing])
