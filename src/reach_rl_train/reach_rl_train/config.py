"""Training configuration: typed sections (OmegaConf structured configs, as IsaacGymEnvs and
Isaac Lab use through Hydra), YAML loading, ``section.key=value`` overrides, validation.

The dataclasses below are the one source of every training default, each field documented
where it is declared; defaults that deployment shares (the interface names, the velocity
fraction) come from :mod:`reach_rl_core.filter_limits`. ``config/train.yaml`` only overrides:
it lists the keys whose value differs from the default (none, at present), and ``reach-rl-train
--print-config`` prints the whole resolved config. Every key of a YAML file or an override
must exist here, so a typo is an error, not a silently ignored setting. OmegaConf checks keys
and types; :func:`validate` checks ranges, each message naming the key.
"""
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from reach_rl_core import franka_model
from reach_rl_core.franka_model import ROBOTS
from reach_rl_core.filter_limits import (DEFAULT_BRAKE_MARGIN, DEFAULT_INTERFACE,
                                         DEFAULT_VELOCITY_FRACTION, INTERFACES, POSE_BRAKE_MARGIN,
                                         FilterLimits)
from reach_rl_core.policy_file import POINT, POSE, TARGET_PERIOD_S, TARGET_TYPES

# task.accel_fraction/jerk_fraction: the interface's value (INTERFACE_DEFAULTS); in
# task.target_period_s and goal.median_time_s: the target type's (and interface's) value
INTERFACE_DEFAULT = -1.0
# rad/s per unit of joint 7's action for pose targets (task.joint7_action_scale): at 1.5 rad/s,
# as the other joints, joint 7 took 3.7 s for the long way round, and most misses were those
POSE_JOINT7_ACTION_SCALE = 4.5
DETERMINISTIC_COMMANDS = ("expected", "mean")  # ppo.deterministic_command


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message says which and why."""


@dataclass
class TaskConfig:
    """The reach task. Units: s, m (base frame), rad, rad/s."""

    robot: str = "fr3"
    backend: str = "torch"  # torch (built-in simulator) | isaacgym
    policy_dt: float = 0.02  # s between policy steps
    # s each target is held before the next one; -1: the target type's (TARGET_PERIOD_S)
    target_period_s: float = INTERFACE_DEFAULT
    targets_per_episode: int = 8  # in a row from wherever the last left the arm (null-space drift)
    target_min: List[float] = field(default_factory=lambda: [0.30, -0.35, 0.15])  # m
    target_max: List[float] = field(default_factory=lambda: [0.60, 0.35, 0.60])  # m
    start_noise: float = 0.2  # rad, uniform around the ready pose
    action_scale: float = 1.5  # rad/s per unit of policy action
    # rad/s per unit of joint 7's action; -1: action_scale for point targets,
    # POSE_JOINT7_ACTION_SCALE for pose targets (joint 7 gives the target's yaw: up to 5.6 rad the
    # long way round within a target period; its velocity limit is 5.26 rad/s on the FR3)
    joint7_action_scale: float = INTERFACE_DEFAULT
    # deploy interface whose filter limits the commands (filter_limits.INTERFACES): ros2_control
    # (topic path, trajectories for joint_trajectory_controller) | libfranka
    interface: str = DEFAULT_INTERFACE
    # of the joint velocity limit, as the deploy filter (the deploy node's default)
    velocity_fraction: float = DEFAULT_VELOCITY_FRACTION
    # The next two: -1 (INTERFACE_DEFAULT) = the interface's value, else an override.
    accel_fraction: float = INTERFACE_DEFAULT  # of the joint acceleration limit, (0, 1]
    jerk_fraction: float = INTERFACE_DEFAULT  # of the joint jerk limit, (0, 1]
    # rad inside the position limits where the command limits brake each joint to rest; -1:
    # the target type's (point: DEFAULT_BRAKE_MARGIN, the deploy filter's; pose:
    # POSE_BRAKE_MARGIN, which the policy file then keeps whatever the deploy's margin)
    brake_margin: float = INTERFACE_DEFAULT
    # Success: the TCP within success_radius of the target when its period ends (pose targets:
    # and within reach_rl_core.orientation.ORIENTATION_TOLERANCE, 5 deg, of its orientation).
    success_radius: float = 0.01  # m
    # point: position targets, any hand orientation | pose: position and orientation of the
    # TCP frame <arm>_hand_tcp (the policy file's target_quat input), as Isaac-Reach-Franka
    target: str = POINT
    # rad, pose targets: the TCP z axis within this angle of straight down (uniform over the
    # cone's solid angle), any yaw; 0: pointing straight down (roll 0, pitch pi, yaw -pi..pi)
    down_cone: float = 0.0
    isaacgym_viewer: bool = False  # backend isaacgym: open Isaac Gym's viewer (default headless)


@dataclass
class RewardConfig:
    """Reward weights; each term is per second of simulated time (scaled by policy_dt).

    Tuned for a fast approach (bench/train_bench.py, GPU sweep): a strong, short-range
    ``near`` bonus (about 4 per s within a centimetre or two) acts as a time cost until the
    target is reached, and the light ``action_rate``/``settle`` penalties leave the
    command limiter, not the reward, to bound how hard the arm accelerates and brakes.
    """

    distance: float = 2.0  # -w * d, d in m
    near: float = 4.0  # +w * exp(-d / near_scale)
    near_scale: float = 0.02  # m
    precise: float = 4.0  # +w * exp(-d / precise_scale)
    precise_scale: float = 0.004  # m
    action_rate: float = 0.1  # -w * |desired - previous command|^2, (rad/s)^2
    acceleration: float = 0.002  # -w * |joint acceleration|^2, (rad/s^2)^2
    settle: float = 0.1  # -w * exp(-d / near_scale) * |joint velocity|^2, (rad/s)^2
    # Null space (4 redundant DOF; joint 7 does not move the TCP): without these terms the arm
    # drifts into limits. -w * sum_j posture_joints_j * (q_j - READY_POSE_j)^2, rad^2:
    posture: float = 1.0
    posture_joints: List[float] = field(default_factory=lambda: [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    # -w * sum_j (1 - s_j / limit_margin)^2 over joints closer than limit_margin [rad] to a limit
    joint_limit: float = 10.0
    limit_margin: float = 0.4  # rad
    # Pose targets only (task.target=pose), on the angle a [rad] between the TCP's orientation
    # and the target's (reach_rl_core.orientation.orientation_error_angle) and the distance d:
    # -orientation * a + exp(-d / orientation_gate_scale) * (orientation_near
    # * exp(-a / orientation_near_scale) + orientation_precise * exp(-a / orientation_precise_scale));
    # ``settle`` then applies near the pose (its factor times exp(-a / orientation_near_scale)).
    # The bonuses are paid near the target position only: paid everywhere, they outweighed the
    # distance terms, and the policy learned to hold the orientation and never moved to the target
    # (0.2 deg, 400 mm after 400 iterations); within 2 cm only, it tended to arrive tilted and
    # stay so. Scales: about twice and 0.4 times the 5 deg tolerance, as near_scale and
    # precise_scale are of the 1 cm radius. (GPU sweep of issue 32: docs/training.md.) The linear
    # cost (on the angle plus joint 7's detour, rewards.orientation_reward) at 0.5 rather than 2
    # lets the position be learned sooner (CPU: 82.8 % against 78.4 % held-out at 400 iterations).
    orientation: float = 0.5  # per rad
    orientation_gate_scale: float = 0.05  # m
    orientation_near: float = 4.0
    orientation_near_scale: float = 0.2  # rad (11.5 deg)
    orientation_precise: float = 4.0
    orientation_precise_scale: float = 0.035  # rad (2 deg)
    # posture_joints for pose targets: joint 7 turns the hand about its axis, which the target
    # yaw (-pi..pi) sets, so it is not pulled home
    pose_posture_joints: List[float] = field(
        default_factory=lambda: [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    # Pose targets: pull those joints toward the IK reference (reach_rl_train.ik_reference), a
    # posture that reaches the target, instead of READY_POSE
    pose_reference: bool = True


@dataclass
class RandomizationConfig:
    """Sim-to-real randomisation, sampled per episode and per environment."""

    enabled: bool = True
    actuator_tau_min: float = 0.0  # s, first-order actuator lag in [min, max]
    actuator_tau_max: float = 0.03  # s
    latency_steps_min: int = 0  # observation latency in [min, max] policy steps
    latency_steps_max: int = 2
    joint_pos_noise: float = 0.002  # rad, std of Gaussian noise on joint positions
    joint_vel_noise: float = 0.02  # rad/s, std of Gaussian noise on joint velocities


@dataclass
class PPOConfig:
    num_steps: int = 24  # rollout length per environment and iteration
    num_epochs: int = 5
    num_minibatches: int = 4
    gamma: float = 0.98  # per policy step (0.02 s): a horizon of about 1 s, one reach
    gae_lambda: float = 0.95
    clip: float = 0.2
    learning_rate: float = 1e-3
    # > 0: the learning rate adapts to keep each minibatch's KL near it (rsl_rl's schedule);
    # 0: a fixed learning rate, which learned this task faster (README, "Train").
    desired_kl: float = 0.0
    entropy_coef: float = 0.002
    value_coef: float = 1.0
    max_grad_norm: float = 1.0
    init_std: float = 0.5
    hidden: List[int] = field(default_factory=lambda: [256, 128, 64])
    # Pose targets: damped-least-squares steps of the inverse kinematics that the policy's encoder
    # runs toward the target pose (ObservationEncoder.inverse_kinematics; in the policy file too);
    # 0: none
    ik_steps: int = 3
    # Pose targets with ik_steps > 0 and ik_prior_accel > 0: the action mean adds a controller's
    # command toward the IK step (ik_prior.IKPrior), which the network corrects: per joint
    # the speed that brakes onto the step at ik_prior_accel of the command limits' acceleration
    # bound, and within ik_prior_time [s] of it the step / ik_prior_time. Alone (the network's
    # output zero), at 0.8 and 0.05 s, it brings 98 % of arms to their first pose in 1.12 s at
    # the median. With it, training reaches 95 % held-out about 100 iterations sooner on the CPU
    # but levelled off at 97 % where the network alone goes on to 99 % (docs/training.md):
    # off (0) by default.
    ik_prior_accel: float = 0.0
    ik_prior_time: float = 0.05
    # The command the policy file and the held-out judge send: "expected", the mean of the
    # limited command under the policy's Gaussian (what rollouts send on average), or "mean",
    # the limited mean, which chatters at the per-step limit near the target
    # (reach_rl_train/expected_command.py).
    deterministic_command: str = "expected"


@dataclass
class GoalConfig:
    """When a policy is good enough (``run.until_goal``), judged every ``eval_every``
    iterations on ``eval_targets`` held-out targets (seed ``eval_seed``, not a training seed),
    ``eval_in_a_row`` per arm from wherever the last one left it, the policy's deterministic
    command, met in both of ``reach-rl-eval``'s conditions (nominal, and under lag, latency and
    noise): as ``reach-rl-eval`` judges a policy file, whose defaults these are."""

    # share of targets ending within task.success_radius (pose: and 5 deg of the orientation)
    success: float = 0.99
    median_error_mm: float = 2.0  # mm, median final error
    median_orientation_error_deg: float = 1.0  # deg, median final orientation error (pose only)
    # s, median time from which success holds to the target's period end (point: 1 cm; pose:
    # 1 cm and 5 deg; evaluate.HELD_KEY); -1: the target
    # type's and interface's (held_out.TIME_GOAL: point 1.0 s, pose 1.2 s, on both
    # interfaces), 0: none
    median_time_s: float = INTERFACE_DEFAULT
    eval_every: int = 10  # iterations
    eval_targets: int = 1000
    eval_in_a_row: int = 4
    eval_seed: int = 12345
    # Cheaper judging before the policy is near the goal (held_out.GoalJudge; the goal is only
    # ever met on all eval_targets): no judgement while the rollouts' success share is below
    # screen_train_success; then, until a screen passes, screen_targets held-out targets
    # (0, or >= eval_targets: none; none where evaluation runs as CUDA graphs, on a GPU)
    # against the goal loosened by screen_slack (a fraction); then every held-out target.
    screen_train_success: float = 0.5
    screen_targets: int = 200
    screen_slack: float = 0.25
    # At most this share of the run's wall time goes to judging: a due judgement waits while
    # the judgements so far took more (1: judge whenever due). On this CPU a full pose judgement
    # takes about 17 s, ten iterations of 512 arms 11 s; on a GPU, graphed, it takes under 1 s.
    eval_share: float = 0.25


@dataclass
class RunConfig:
    device: str = "cpu"  # cpu | cuda | cuda:N
    num_envs: int = 512
    max_iterations: int = 400
    seed: int = 1
    out: str = "runs/policy.onnx"  # the exported policy; logs go beside it
    log_dir: str = ""  # default: <out without .onnx>_logs
    checkpoint_every: int = 50  # iterations
    resume: str = ""  # checkpoint path to continue from (a torchrun job: the same ranks)
    # Stop at the goal (section goal) or at max_iterations, and export the best policy seen.
    until_goal: bool = True
    dist_timeout_s: float = 120.0  # torchrun jobs: a collective waiting longer ends the job
    # On a GPU, record the rollout once as a CUDA graph and replay it (one process, built-in
    # simulator): thousands of kernel launches become one (reach_rl_train/cuda_graph.py).
    cuda_graph: bool = True
    # torch CPU threads, 0: all cores. One per training, so two side by side fill this 2-core
    # machine; a training alone runs faster on two (pose, 512 arms: 15.0k against 10.6k
    # env-steps/s; 1024 arms: 20.2k; docs/measurements.md, 2026-12-07)
    threads: int = 1


@dataclass
class TrainConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    goal: GoalConfig = field(default_factory=GoalConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _merge(cfg: DictConfig, data: Any, source: str) -> DictConfig:
    """``cfg`` with ``data`` (a mapping of sections) merged in by OmegaConf, which checks every
    key against the dataclasses and converts every value to its field's type; ConfigError
    naming ``source`` and the key otherwise."""
    if not isinstance(data, (dict, DictConfig)):
        raise ConfigError("%s must be a mapping of sections" % source)
    data = {section: values for section, values in data.items() if values is not None}
    try:
        return OmegaConf.merge(cfg, data)
    except ConfigKeyError as exc:
        section, _, key = str(exc.full_key).partition(".")
        if not key:
            raise ConfigError("%s: unknown section %r (known: %s)" % (
                source, section, ", ".join(f.name for f in dataclasses.fields(TrainConfig)))) from None
        raise ConfigError("%s: unknown key %s (known: %s)" % (
            source, exc.full_key, ", ".join(sorted(OmegaConf.select(cfg, section).keys())))) from None
    except ValidationError as exc:
        section, _, key = str(exc.full_key).partition(".")
        default = OmegaConf.select(cfg, str(exc.full_key)) if key else None
        kind = ("mapping" if default is None else "list" if isinstance(default, ListConfig)
                else type(default).__name__)
        raise ConfigError("%s: %s must be a %s, got %r" % (source, exc.full_key, kind,
                                                          exc.value)) from None


def parse_override(text: str) -> Dict[str, Any]:
    """``"ppo.learning_rate=3e-4"`` -> ``{"ppo": {"learning_rate": 3e-4}}`` (value parsed as YAML)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError("override %r must look like section.key=value, e.g. ppo.learning_rate=3e-4"
                          % text)
    return OmegaConf.to_container(OmegaConf.from_dotlist([text]))


def config_from(layers: Sequence[Tuple[Any, str]]) -> TrainConfig:
    """The defaults with each ``(mapping, source)`` of ``layers`` merged in turn; validated."""
    cfg = OmegaConf.structured(TrainConfig)
    for data, source in layers:
        cfg = _merge(cfg, data, source)
    result = OmegaConf.to_object(cfg)
    validate(result)
    return result


def load_config(path: Optional[str] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``; validated."""
    layers = []  # type: List[Tuple[Any, str]]
    if path:
        try:
            with open(path) as f:
                layers.append((yaml.safe_load(f) or {}, "config %s" % path))
        except OSError as exc:
            raise ConfigError("cannot read config %s: %s" % (path, exc.strerror)) from None
        except yaml.YAMLError as exc:
            raise ConfigError("config %s is not valid YAML: %s" % (path, exc)) from None
    layers += [(parse_override(text), "override %r" % text) for text in overrides]
    return config_from(layers)


def target_period(task: TaskConfig) -> float:
    """Seconds each target is held before the next one: ``task.target_period_s``, or for -1
    the target type's (:data:`TARGET_PERIOD_S`)."""
    if task.target_period_s == INTERFACE_DEFAULT:
        return TARGET_PERIOD_S[task.target]
    return task.target_period_s


def action_scales(task: TaskConfig) -> Tuple[float, ...]:
    """rad/s per unit of policy action, per joint (7): ``task.action_scale``, joint 7's
    ``task.joint7_action_scale`` or for -1 the target type's."""
    joint7 = task.joint7_action_scale
    if joint7 == INTERFACE_DEFAULT:
        joint7 = POSE_JOINT7_ACTION_SCALE if task.target == POSE else task.action_scale
    return (task.action_scale,) * 6 + (joint7,)


def task_filter_limits(t: TaskConfig) -> FilterLimits:
    """The deploy filter's limits that ``t`` trains under: ``t.interface``'s defaults
    (``FilterLimits.for_interface``) with the task's overrides, once per policy step as the
    deploy node runs it (no command hold: the training simulator holds no command). ValueError
    when they cannot be built."""
    margin = t.brake_margin
    if margin == INTERFACE_DEFAULT:
        margin = POSE_BRAKE_MARGIN if t.target == POSE else DEFAULT_BRAKE_MARGIN
    return FilterLimits.for_interface(
        franka_model.joint_limits(t.robot), t.interface, 1.0 / t.policy_dt, t.velocity_fraction,
        t.accel_fraction, t.jerk_fraction, brake_margin=margin)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: TrainConfig) -> None:
    """ConfigError for values that cannot work, naming the key and the allowed range."""
    _validate_task(cfg.task)
    _validate_reward_and_randomization(cfg.reward, cfg.randomization)
    _validate_ppo_and_run(cfg.ppo, cfg.run)
    _validate_goal(cfg.goal)
    _require(cfg.ppo.ik_prior_accel == 0.0 or (cfg.task.target == POSE and cfg.ppo.ik_steps > 0),
             "ppo.ik_prior_accel (%r) follows the IK step of pose targets: set task.target=pose "
             "and ppo.ik_steps > 0" % cfg.ppo.ik_prior_accel)


def _validate_task(t: TaskConfig) -> None:
    _require(t.robot in ROBOTS, "task.robot must be one of %s, got %r" % (ROBOTS, t.robot))
    _require(t.backend in ("torch", "isaacgym"),
             "task.backend must be torch or isaacgym, got %r" % t.backend)
    _require(0.001 <= t.policy_dt <= 0.2, "task.policy_dt must be in [0.001, 0.2] s")
    _require(t.target in TARGET_TYPES, "task.target must be one of %s, got %r"
             % (", ".join(TARGET_TYPES), t.target))
    _require(target_period(t) >= 10 * t.policy_dt,
             "task.target_period_s must be at least 10 policy steps (or -1: the target type's)")
    _require(t.targets_per_episode >= 1, "task.targets_per_episode must be >= 1")
    _require(len(t.target_min) == 3 and len(t.target_max) == 3,
             "task.target_min and task.target_max must have 3 values (x, y, z in m)")
    _require(all(lo <= hi for lo, hi in zip(t.target_min, t.target_max)),
             "task.target_min must be <= task.target_max on every axis")
    _require(all(abs(v) <= 1.0 for v in t.target_min + t.target_max),
             "task target box must lie within 1 m of the base (the arm's reach is ~0.86 m)")
    _require(0.0 <= t.start_noise <= 1.0, "task.start_noise must be in [0, 1] rad")
    _require(t.action_scale > 0, "task.action_scale must be > 0 rad/s")
    _require(t.brake_margin >= 0 or t.brake_margin == INTERFACE_DEFAULT,
             "task.brake_margin must be >= 0 rad, or -1 for the target type's")
    _require(t.joint7_action_scale > 0 or t.joint7_action_scale == INTERFACE_DEFAULT,
             "task.joint7_action_scale must be > 0 rad/s, or -1 for the target type's")
    _require(t.interface in INTERFACES, "task.interface must be one of %s, got %r"
             % (", ".join(INTERFACES), t.interface))
    _require(0.0 < t.velocity_fraction <= 1.0,
             "task.velocity_fraction must be in (0, 1], got %r" % t.velocity_fraction)
    for name in ("accel_fraction", "jerk_fraction"):
        value = getattr(t, name)
        _require(value == INTERFACE_DEFAULT or 0.0 < value <= 1.0,
                 "task.%s must be in (0, 1] (or -1: the interface's default), got %r" % (name, value))
    _require(t.success_radius > 0, "task.success_radius must be > 0 m")
    _require(0.0 <= t.down_cone <= math.pi,
             "task.down_cone must be in [0, pi] rad, got %r" % t.down_cone)
    _require(t.down_cone == 0.0 or t.target == POSE,
             "task.down_cone (%r rad) applies to pose targets only: set task.target=pose"
             % t.down_cone)


def _validate_reward_and_randomization(r: RewardConfig, d: RandomizationConfig) -> None:
    _require(r.near_scale > 0 and r.precise_scale > 0, "reward scales must be > 0 m")
    _require(r.orientation_near_scale > 0 and r.orientation_precise_scale > 0,
             "reward.orientation_near_scale and orientation_precise_scale must be > 0 rad")
    _require(r.orientation_gate_scale > 0, "reward.orientation_gate_scale must be > 0 m")
    for name in ("posture_joints", "pose_posture_joints"):
        weights = getattr(r, name)
        _require(len(weights) == 7 and all(v >= 0 for v in weights),
                 "reward.%s must list 7 weights >= 0 (joint order)" % name)
    _require(r.limit_margin > 0, "reward.limit_margin must be > 0 rad, got %r" % r.limit_margin)
    _require(0.0 <= d.actuator_tau_min <= d.actuator_tau_max <= 0.5,
             "randomization needs 0 <= actuator_tau_min <= actuator_tau_max <= 0.5 s")
    _require(0 <= d.latency_steps_min <= d.latency_steps_max <= 10,
             "randomization needs 0 <= latency_steps_min <= latency_steps_max <= 10")
    _require(d.joint_pos_noise >= 0 and d.joint_vel_noise >= 0, "randomization noise must be >= 0")


def _validate_ppo_and_run(p: PPOConfig, run: RunConfig) -> None:
    _require(p.num_steps >= 1 and p.num_epochs >= 1 and p.num_minibatches >= 1,
             "ppo.num_steps, num_epochs and num_minibatches must be >= 1")
    _require(0.0 < p.gamma <= 1.0 and 0.0 <= p.gae_lambda <= 1.0,
             "ppo.gamma must be in (0, 1] and ppo.gae_lambda in [0, 1]")
    _require(p.clip > 0 and p.learning_rate > 0 and p.init_std > 0 and p.max_grad_norm > 0,
             "ppo.clip, learning_rate, init_std and max_grad_norm must be > 0")
    _require(p.desired_kl >= 0 and p.entropy_coef >= 0 and p.value_coef >= 0
             and p.ik_prior_accel >= 0,
             "ppo.desired_kl, entropy_coef, value_coef and ik_prior_accel must be >= 0")
    _require(p.ik_prior_accel <= 1, "ppo.ik_prior_accel must be at most 1 (of the command "
             "limits' acceleration bound)")
    _require(p.ik_prior_time > 0, "ppo.ik_prior_time must be > 0 s")
    _require(len(p.hidden) >= 1 and all(h >= 1 for h in p.hidden),
             "ppo.hidden must list at least one layer size >= 1")
    _require(p.deterministic_command in DETERMINISTIC_COMMANDS,
             "ppo.deterministic_command must be one of %s, got %r"
             % (", ".join(DETERMINISTIC_COMMANDS), p.deterministic_command))
    _require(run.num_envs >= 1, "run.num_envs must be >= 1")
    _require(run.num_envs * p.num_steps >= p.num_minibatches,
             "run.num_envs * ppo.num_steps must be >= ppo.num_minibatches")
    _require(run.max_iterations >= 1, "run.max_iterations must be >= 1")
    _require(run.checkpoint_every >= 1, "run.checkpoint_every must be >= 1")
    _require(run.threads >= 0, "run.threads must be >= 0")
    _require(run.dist_timeout_s > 0, "run.dist_timeout_s must be > 0 s")
    _require(run.device == "cpu" or run.device.startswith("cuda"),
             "run.device must be cpu, cuda or cuda:N, got %r" % run.device)
    _require(run.out.endswith(".onnx"), "run.out must be a path ending in .onnx, got %r" % run.out)


def _validate_goal(g: GoalConfig) -> None:
    _require(0.0 <= g.success <= 1.0, "goal.success must be in [0, 1], got %r" % g.success)
    _require(g.median_error_mm > 0, "goal.median_error_mm must be > 0 mm")
    _require(g.median_orientation_error_deg > 0, "goal.median_orientation_error_deg must be > 0 deg")
    _require(g.median_time_s == INTERFACE_DEFAULT or g.median_time_s >= 0,
             "goal.median_time_s must be >= 0 s (0: none) or -1 (the interface's), got %r"
             % g.median_time_s)
    _require(g.eval_every >= 1 and g.eval_targets >= 1 and g.eval_in_a_row >= 1,
             "goal.eval_every, eval_targets and eval_in_a_row must be >= 1")
    _require(0.0 <= g.screen_train_success <= 1.0 and g.screen_targets >= 0
             and g.screen_slack >= 0, "goal.screen_train_success must be in [0, 1], "
             "goal.screen_targets and goal.screen_slack >= 0")
    _require(0.0 < g.eval_share <= 1.0,
             "goal.eval_share must be in (0, 1], got %r" % g.eval_share)
