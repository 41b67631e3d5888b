"""``train_node``'s text parameters, which ``train.launch.py`` offers one to one as launch
arguments: one table for both, so that the launch file and ``python -m reach_rl_train.train_node
--ros-args -p name:=value`` (how the tests start it) take the same names. Empty text keeps the
training config's value; the node checks every value before anything starts."""

TEXT_PARAMETERS = (  # (name, description)
    ("config", "training YAML; empty: the package's config/train.yaml"),
    ("backend", "arm simulator: torch or isaacgym; empty: the config's task.backend"),
    ("device", "cpu, cuda or cuda:N; empty: the config's run.device"),
    ("num_envs", "parallel simulated arms; empty: the config's run.num_envs"),
    ("max_iterations", "PPO iterations; empty: the config's run.max_iterations"),
    ("output", "policy file to write (.onnx); empty: the config's run.out"),
    ("interface", "deploy interface the policy is for: ros2_control or libfranka; empty: the "
                  "config's task.interface"),
    ("target", "target type: point (x, y, z) or pose (and the hand's orientation); empty: the "
               "config's task.target"),
    ("python", "interpreter that runs the trainer, e.g. Isaac Gym's Python 3.8; empty: the node's"),
    ("overrides", "more config overrides, shell-quoted section.key=value words"),
    ("nproc", "trainer processes under torchrun, one per GPU; empty or 1: one"),
)
