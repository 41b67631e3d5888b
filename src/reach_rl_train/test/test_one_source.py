"""Every parameter default has one source (issue 31).

* Training: the dataclasses of ``reach_rl_train/config.py``; ``config/train.yaml`` only
  overrides them, so it may name no key config.py lacks and set no key to its default.
* Defaults the packages share: ``reach_rl_core.filter_limits`` (the deploy interfaces' names,
  the default interface, the velocity fraction, Franka's control rate, the deploy state
  timeout). The four packages' sources must use those constants, never their
  values: an AST scan flags the interface names as string literals anywhere, and the numbers
  where they are given to a name that says what they are (``*velocity_fraction*``,
  ``*control_rate*``, ``*state_timeout*``: assignments, parameter defaults, keyword arguments,
  dict entries), so an unrelated 0.9 (Adam's beta) or 0.02 (the policy period) passes.
"""
import ast
import dataclasses
import os
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from reach_rl_core import filter_limits
from reach_rl_core.filter_limits import (DEFAULT_CONTROL_RATE, DEFAULT_INTERFACE,
                                         DEFAULT_STATE_TIMEOUT, DEFAULT_VELOCITY_FRACTION,
                                         INTERFACES, LIBFRANKA, ROS2_CONTROL)
from reach_rl_train.config import TrainConfig
from source_tree import REPO

PACKAGES = ("reach_rl_core", "reach_rl_deploy", "reach_rl_train", "reach_rl_sim")

TRAIN_YAML = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config",
                          "train.yaml")

# -- config/train.yaml overrides only ----------------------------------------------------


def yaml_problems(data):
    """Why the training YAML mapping ``data`` is not overrides only: each key config.py does not
    declare, and each key whose value (as OmegaConf types it for its field) is the default."""
    defaults = OmegaConf.structured(TrainConfig)
    sections = [f.name for f in dataclasses.fields(TrainConfig)]
    problems = []
    for section, keys in (data or {}).items():
        if section not in sections:
            problems.append("%s: config.py declares no such section" % section)
            continue
        if not isinstance(keys, dict) or not keys:
            problems.append("%s: an empty or non-mapping section" % section)
            continue
        for key, value in keys.items():
            if key not in defaults[section]:
                problems.append("%s.%s: config.py declares no such key" % (section, key))
                continue
            typed = OmegaConf.merge(defaults, {section: {key: value}})[section][key]
            if typed == defaults[section][key]:
                problems.append("%s.%s: %r is config.py's default" % (section, key, value))
    return problems


def test_train_yaml_only_overrides_config_py():
    with open(TRAIN_YAML) as f:
        assert yaml_problems(yaml.safe_load(f)) == []


def test_train_yaml_check_flags_defaults_and_unknown_keys():
    d = TrainConfig()
    assert yaml_problems({"ppo": {"gamma": d.ppo.gamma}}) == [
        "ppo.gamma: %r is config.py's default" % d.ppo.gamma]
    # As the YAML says it: "1.0e-3" is a string to PyYAML, OmegaConf makes it the float default.
    assert yaml_problems({"ppo": {"learning_rate": "%.1e" % d.ppo.learning_rate}})
    assert yaml_problems({"task": {"interface": DEFAULT_INTERFACE, "robot": "panda"}}) == [
        "task.interface: %r is config.py's default" % DEFAULT_INTERFACE]
    assert yaml_problems({"ppo": {"gama": 0.5}}) == ["ppo.gama: config.py declares no such key"]
    assert yaml_problems({"tsk": {"robot": "panda"}}) == ["tsk: config.py declares no such section"]
    assert yaml_problems({"run": None}) == ["run: an empty or non-mapping section"]
    # Real overrides pass.
    assert yaml_problems({"ppo": {"gamma": 0.5}, "task": {"interface": LIBFRANKA}}) == []
    assert yaml_problems(None) == []


def test_training_takes_the_shared_defaults_from_core():
    task = TrainConfig().task
    assert task.interface == DEFAULT_INTERFACE in INTERFACES
    assert task.velocity_fraction == DEFAULT_VELOCITY_FRACTION


# -- shared defaults: one definition, in reach_rl_core.filter_limits -----------------------

# The constants that are the one source, and the value each stands for.
DEFINED = {"ROS2_CONTROL": ROS2_CONTROL, "LIBFRANKA": LIBFRANKA, "INTERFACES": INTERFACES,
           "DEFAULT_INTERFACE": DEFAULT_INTERFACE,
           "DEFAULT_VELOCITY_FRACTION": DEFAULT_VELOCITY_FRACTION,
           "DEFAULT_CONTROL_RATE": DEFAULT_CONTROL_RATE,
           "DEFAULT_STATE_TIMEOUT": DEFAULT_STATE_TIMEOUT}
# A number given to a name containing the key is that default spelled out again.
NAMED_NUMBERS = {"velocity_fraction": DEFAULT_VELOCITY_FRACTION,
                 "control_rate": DEFAULT_CONTROL_RATE,
                 "state_timeout": DEFAULT_STATE_TIMEOUT}
DEFINING_FILE = Path(filter_limits.__file__).resolve()


def _name(node):
    """The name an assignment target, a dict key or a value spells, or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _number(node):
    """The number ``node`` spells, also as the first argument of a call (a default wrapped
    with its description, ``_p(0.9, "...")``), or None."""
    if isinstance(node, ast.Call) and node.args:
        node = node.args[0]
    if (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)):
        return node.value
    return None


def _named_values(tree):
    """(name, value node, declares a default) for each value given a name: assignments and
    parameter defaults (declarations), keyword arguments and string-keyed dict entries."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield _name(target), node.value, True
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            yield _name(node.target), node.value, True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            positional = a.posonlyargs + a.args
            for arg, default in zip(positional[len(positional) - len(a.defaults):], a.defaults):
                yield arg.arg, default, True
            for arg, default in zip(a.kwonlyargs, a.kw_defaults):
                if default is not None:
                    yield arg.arg, default, True
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg:
                    yield keyword.arg, keyword.value, False
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if key is not None:
                    yield _name(key), value, False


def repeated_defaults(source, allowed_names=()):
    """(line, what) for each place in ``source`` that spells out a shared default instead of
    using its reach_rl_core constant; module-level assignments to ``allowed_names`` are the
    definitions (filter_limits' own)."""
    tree = ast.parse(source)
    allowed_lines = {node.lineno for node in tree.body if isinstance(node, ast.Assign)
                     and any(_name(t) in allowed_names for t in node.targets)}
    found = [(node.lineno, "interface name %r (filter_limits.INTERFACES)" % node.value)
             for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and node.value in INTERFACES]
    for name, value, declares in _named_values(tree):
        lowered = (name or "").lower()
        for key, default in NAMED_NUMBERS.items():
            if key in lowered and _number(value) == default:
                found.append((value.lineno, "%s = %r (filter_limits' constant)" % (name, default)))
        # A default interface declared as one interface: DEFAULT_INTERFACE says which.
        if declares and "interface" in lowered and _name(value) in ("ROS2_CONTROL", "LIBFRANKA"):
            found.append((value.lineno, "%s = %s (use DEFAULT_INTERFACE)" % (name, _name(value))))
    return sorted((line, what) for line, what in found if line not in allowed_lines)


def sources():
    """Every Python file of the four packages (modules and launch files), from this checkout."""
    paths = []
    for package in PACKAGES:
        paths += list((REPO / "src" / package / package).rglob("*.py"))
        paths += list((REPO / "src" / package / "launch").glob("*.py"))
    return sorted(p for p in paths if "__pycache__" not in p.parts)


def test_no_package_spells_a_shared_default_outside_filter_limits():
    paths = sources()
    assert DEFINING_FILE in paths and any(p.name == "config.py" for p in paths)
    found = ["%s:%d: %s" % (path, line, what) for path in paths
             for line, what in repeated_defaults(path.read_text(),
                                                 DEFINED if path == DEFINING_FILE else ())]
    assert not found, "\n".join(found)


def test_each_shared_default_is_defined_once_in_filter_limits():
    definitions = {}
    for path in sources():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if _name(target) in DEFINED:
                        definitions.setdefault(_name(target), []).append(path)
    assert definitions == {name: [DEFINING_FILE] for name in DEFINED}


def test_the_scan_flags_spelled_out_defaults_and_passes_unrelated_numbers():
    bad = "\n".join([
        "def limits(control_rate=%r, velocity_fraction=%r): pass" % (DEFAULT_CONTROL_RATE,
                                                                     DEFAULT_VELOCITY_FRACTION),
        "node = start(state_timeout=%r, interface=%r)" % (DEFAULT_STATE_TIMEOUT, LIBFRANKA),
        "class Config:",
        "    interface: str = ROS2_CONTROL",
        "    velocity_fraction: float = %r" % DEFAULT_VELOCITY_FRACTION,
        "    state_timeout: float = _p(%r, 'joint states older than this stop the arm [s]')"
        % DEFAULT_STATE_TIMEOUT,
        "PARAMS = {'state_timeout': %r, 'control_rate': %r}" % (DEFAULT_STATE_TIMEOUT,
                                                               int(DEFAULT_CONTROL_RATE)),
        "CHOICES = (%r, %r)" % (ROS2_CONTROL, LIBFRANKA),
    ])
    assert [line for line, _ in repeated_defaults(bad)] == [1, 1, 2, 2, 4, 5, 6, 7, 7, 8, 8]
    good = "\n".join([
        "betas = (%r, 0.999)" % DEFAULT_VELOCITY_FRACTION,
        "policy_dt = %r" % DEFAULT_STATE_TIMEOUT,
        "error_mm = %r * error" % DEFAULT_CONTROL_RATE,
        "node = start(velocity_fraction=0.5, interface=LIBFRANKA, control_rate=50.0)",
        "def limits(interface=DEFAULT_INTERFACE, state_timeout=DEFAULT_STATE_TIMEOUT): pass",
        "text = 'interface:=%s'" % LIBFRANKA,  # prose and composed words are not the constant
    ])
    assert repeated_defaults(good) == []
    # The definitions themselves pass only where they are allowed.
    definition = "ROS2_CONTROL = %r\nDEFAULT_STATE_TIMEOUT = %r\n" % (ROS2_CONTROL,
                                                                     DEFAULT_STATE_TIMEOUT)
    assert len(repeated_defaults(definition)) == 2
    assert repeated_defaults(definition, DEFINED) == []


@pytest.mark.parametrize("name", sorted(NAMED_NUMBERS))
def test_each_named_default_is_caught_on_its_own(name):
    assert repeated_defaults("x = f(%s=%r)" % (name, NAMED_NUMBERS[name])) != []
    assert repeated_defaults("x = f(%s=%r)" % (name, NAMED_NUMBERS[name] / 2)) == []
