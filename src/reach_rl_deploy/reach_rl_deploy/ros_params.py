"""The one way reach_rl's nodes declare their parameters: read-only, described, up front."""
from rcl_interfaces.msg import ParameterDescriptor


def declare_read_only(node, name: str, default, description: str, dynamic_typing: bool = False):
    """Declare ``name`` on ``node`` (read-only: a node reads its parameters once, at start) and
    return its value. ``dynamic_typing``: accept any type (launch passes text where the command
    line passes numbers)."""
    descriptor = ParameterDescriptor(description=description, read_only=True,
                                     dynamic_typing=dynamic_typing)
    return node.declare_parameter(name, default, descriptor).value
