# Source me (bash): `source env.sh` — the project's venv plus the ROS 2 environment that the
# ros-jazzy-* wheels need, and the colcon install space if `make test` (colcon build) has run.
# Then: reach-rl-launch interface:=libfranka sim:=true policy:=...   reach-rl-targets ...
# (ros2 launch / ros2 run where a ROS 2 install provides them).
# Safe to source more than once. Needs `make setup` first.
# colcon's and the venv's scripts are not `set -u` clean: relax it while sourcing, restore after.
case $- in *u*) _reach_rl_nounset=1; set +u ;; *) _reach_rl_nounset= ;; esac
_reach_rl_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
if [ ! -x "$_reach_rl_root/.venv/bin/python" ]; then
  echo "env.sh: no $_reach_rl_root/.venv — run 'make setup' first" >&2
  [ -n "$_reach_rl_nounset" ] && set -u
  return 1 2>/dev/null || exit 1
fi
VIRTUAL_ENV_DISABLE_PROMPT=${VIRTUAL_ENV_DISABLE_PROMPT:-}
# shellcheck disable=SC1091
. "$_reach_rl_root/.venv/bin/activate"

_reach_rl_prepend() {  # VAR DIR: put DIR first in the colon list VAR, once
  local var=$1 dir=$2 cur
  cur=":${!var:-}:"
  cur=${cur//:$dir:/:}
  cur=${cur#:}; cur=${cur%:}
  export "$var=$dir${cur:+:$cur}"
}

# Native libraries of the ros-jazzy wheels (what `import ros_wheels_bootstrapper` would set).
_reach_rl_sp=$("$VIRTUAL_ENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for _d in "$_reach_rl_sp"/ros_*.libs; do
  [ -d "$_d" ] && _reach_rl_prepend LD_LIBRARY_PATH "$_d"
done
_reach_rl_prepend LD_LIBRARY_PATH "$VIRTUAL_ENV/lib"
# The wheels' ament index lives in the venv prefix.
_reach_rl_prepend AMENT_PREFIX_PATH "$VIRTUAL_ENV"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1   # LD_LIBRARY_PATH is set: no re-exec needed
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# Keep DDS discovery on this machine unless the caller says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}

# The colcon install space (the four reach_rl_* packages), once built.
if [ -f "$_reach_rl_root/install/setup.bash" ]; then
  # shellcheck disable=SC1091
  . "$_reach_rl_root/install/setup.bash"
fi
[ -n "$_reach_rl_nounset" ] && set -u
unset _d _reach_rl_sp _reach_rl_root _reach_rl_nounset
unset -f _reach_rl_prepend
