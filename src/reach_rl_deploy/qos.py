"""QoS profiles of reach_rl's topics: every one is reliable keep-last, some latched."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def reliable(depth: int, latched: bool = False) -> QoSProfile:
    """Reliable, keep the last ``depth`` messages; ``latched``: transient local, so a subscriber
    that joins later still gets the last message."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                      else DurabilityPolicy.VOLATILE)
