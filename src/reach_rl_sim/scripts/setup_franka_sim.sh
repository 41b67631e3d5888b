#!/usr/bin/env bash
# Creates the franka-sim environment: `src/reach_rl_sim/scripts/setup_franka_sim.sh PYTHON VENV` (make setup runs it).
#
# franka-sim (PyPI, Apache-2.0) is a libfranka-protocol server on MuJoCo physics with the FCI's
# motion-limit checks and communication constraints: the independent robot the deploy node is
# judged against. It pins numpy==1.26.4 and mujoco<3.3, which clash with the project's venv,
# so it gets a venv of its own. Its FR3 model normally comes from robot_descriptions, which
# downloads it at first use; nothing may be downloaded at run time here, so the model comes
# from the franky-sim wheel (MuJoCo Menagerie's fr3.xml and meshes, Apache-2.0, NOTICE
# included), with its meshdir pointed at the wheel's meshes/ folder: VENV/fr3_mjcf/fr3.xml.
set -euo pipefail
python=${1:?usage: setup_franka_sim.sh PYTHON VENV}
venv=${2:?usage: setup_franka_sim.sh PYTHON VENV}
FRANKA_SIM_VERSION=1.1.7
FRANKY_SIM_VERSION=1.0.4
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q "franka-sim==$FRANKA_SIM_VERSION" "franky-sim==$FRANKY_SIM_VERSION"
assets=$("$venv/bin/python" -c 'import franky_sim, os; print(os.path.join(os.path.dirname(franky_sim.__file__), "assets"))')
mkdir -p "$venv/fr3_mjcf"
sed "s#meshdir=\"assets\"#meshdir=\"$assets/meshes\"#" "$assets/fr3.xml" > "$venv/fr3_mjcf/fr3.xml"
cp "$assets/NOTICE" "$venv/fr3_mjcf/NOTICE"
grep -q "meshdir=\"$assets/meshes\"" "$venv/fr3_mjcf/fr3.xml" || { echo "setup_franka_sim: could not point fr3.xml at $assets/meshes" >&2; exit 1; }
echo "franka-sim $FRANKA_SIM_VERSION in $venv; FR3 model $venv/fr3_mjcf/fr3.xml"
