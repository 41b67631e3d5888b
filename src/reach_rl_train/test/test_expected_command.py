"""The deterministic command: the mean of the limited command under the policy's Gaussian."""
import pytest

torch = pytest.importorskip("torch")

from reach_rl_core import franka_model  # noqa: E402
from reach_rl_core.safety_filter import policy_command  # noqa: E402
from reach_rl_train.actor_critic import ActorCritic, PolicyGraph  # noqa: E402
from reach_rl_train.config import load_config, task_filter_limits  # noqa: E402
from reach_rl_train.expected_command import (command_interval, expected_command,  # noqa: E402
                                             gaussian_clip_mean)
from reach_rl_train.export import example_inputs  # noqa: E402

DT = 0.02
SCALE = torch.tensor([1.5] * 6 + [4.5])  # rad/s per unit of action, joint 7's as for poses


def clip(goal):
    return torch.minimum(torch.maximum(goal, -SCALE), SCALE)


@pytest.fixture(scope="module")
def limits():
    return task_filter_limits(load_config(None, ["task.interface=libfranka"]).task)


def states(n: int, seed: int = 0):
    """Joint positions (some 0.06 rad inside an upper limit), previous commands and goal means."""
    g = torch.Generator().manual_seed(seed)
    limits = franka_model.joint_limits("fr3")
    q = torch.tensor(franka_model.READY_POSE) + 0.8 * (torch.rand(n, 7, generator=g) - 0.5)
    q[: n // 8] = torch.tensor(limits.pos_max, dtype=torch.float32) - 0.06
    prev = torch.rand(n, 7, generator=g) - 0.5
    mean = 3.0 * (torch.rand(n, 7, generator=g) - 0.5)
    return q, prev, mean, g


def test_the_clip_mean_is_the_average_of_sampled_clips():
    g = torch.Generator().manual_seed(1)
    mean = torch.tensor([-1.0, 0.0, 0.3, 0.5, 2.0, 0.0])
    std = torch.tensor([0.5, 0.2, 0.3, 1.0, 0.4, 0.2])
    low = torch.tensor([-0.5, -0.1, 0.2, 0.0, -1.0, 0.4])
    high = torch.tensor([0.5, 0.1, 0.4, 0.6, 1.0, 0.3])  # the last: low > high, the clip is high
    samples = mean + std * torch.randn(400000, 6, generator=g)
    sampled = torch.minimum(torch.maximum(samples, low), high).mean(0)
    assert torch.allclose(gaussian_clip_mean(mean, std, low, high), sampled, atol=3e-3)


def test_one_interval_is_the_task_s_command_limits(limits):
    q, prev, _, g = states(256)
    goal = 4.0 * (torch.rand(256, 7, generator=g) - 0.5)
    low, high = command_interval(limits, q, prev, SCALE, DT)
    clipped = torch.minimum(torch.maximum(goal, low), high)
    task = policy_command(limits, q, clip(goal), prev, DT)
    assert torch.allclose(clipped, task, atol=1e-6)


def test_the_expected_command_keeps_the_limits_and_tends_to_the_limited_mean(limits):
    q, prev, mean, _ = states(256)
    low, high = command_interval(limits, q, prev, SCALE, DT)
    wide = expected_command(limits, q, prev, mean, torch.full((7,), 0.5), SCALE, DT)
    assert bool(((wide >= low - 1e-6) & (wide <= high + 1e-6)).all())
    narrow = expected_command(limits, q, prev, mean, torch.full((7,), 1e-6), SCALE, DT)
    assert torch.allclose(narrow, policy_command(limits, q, clip(mean), prev, DT),
                          atol=1e-5)


def test_near_its_mean_the_expected_command_moves_less_than_the_limited_mean(limits):
    """A small goal change moves the clip of the mean by the full per-step change, the command
    averaged over the training noise by much less: the gain training saw."""
    q, prev, _, _ = states(64)
    std = torch.full((7,), 0.3)
    low, high = command_interval(limits, q, prev, SCALE, DT)
    centre = 0.5 * (low + high)
    push = 0.5 * (high - low)
    moved = expected_command(limits, q, prev, centre + push, std, SCALE, DT)
    still = expected_command(limits, q, prev, centre, std, SCALE, DT)
    assert bool(((moved - still) < 0.5 * push + 1e-6).all())


def test_the_policy_graph_sends_either_command(limits):
    torch.manual_seed(0)
    model = ActorCritic([32, 32], init_std=0.3)
    with torch.no_grad():
        model.actor[-1].weight.normal_(0, 1.0)
    inputs = example_inputs(64, seed=2)
    joint_pos, _, _, prev = inputs
    with torch.no_grad():
        mean = model.actor(model.normalizer(model.encoder(*inputs))) * SCALE
        std = model.log_std.exp() * SCALE
        for kind, want in (("mean", policy_command(limits, joint_pos, clip(mean),
                                                   prev, DT)),
                           ("expected", expected_command(limits, joint_pos, prev, mean, std,
                                                         SCALE, DT))):
            graph = PolicyGraph(model, SCALE.tolist(), limits, DT, kind).eval()
            assert torch.allclose(graph(*inputs), want, atol=1e-5), kind
            obs = torch.cat(inputs, -1)
            command = model.command(obs, limits, SCALE.tolist(), DT, kind)
            assert torch.allclose(command, want, atol=1e-5)
