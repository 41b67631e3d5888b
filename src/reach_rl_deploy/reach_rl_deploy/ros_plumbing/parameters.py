"""The one way reach_rl's nodes declare their parameters: read-only, described, up front."""
from typing import Optional

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


def declare_read_only(node, name: str, default, description: str, dynamic_typing: bool = False,
                      low: Optional[float] = None, high: Optional[float] = None):
    """Declare ``name`` on ``node`` (read-only: a node reads its parameters once, at start) and
    return its value. ``dynamic_typing``: accept any type (launch passes text where the command
    line passes numbers). ``low``..``high``: the range of a number (inclusive), which
    ``ros2 param describe`` shows and rclpy enforces (InvalidParameterValueException)."""
    descriptor = ParameterDescriptor(description=description, read_only=True,
                                     dynamic_typing=dynamic_typing)
    if low is not None and isinstance(default, int) and not isinstance(default, bool):
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    elif low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                              to_value=float(high), step=0.0)]
    return node.declare_parameter(name, default, descriptor).value
