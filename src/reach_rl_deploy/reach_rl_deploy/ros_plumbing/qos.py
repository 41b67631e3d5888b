"""QoS profiles of reach_rl's topics: every one is reliable keep-last, some latched."""
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def reliable(depth: int, latched: bool = False) -> QoSProfile:
    """Reliable, keep the last ``depth`` messages; ``latched``: transient local, so a subscriber
    that joins later still gets the last message."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                      else DurabilityPolicy.VOLATILE)


def wait_acknowledged(publishers, timeout: float) -> None:
    """Wait up to ``timeout`` s [each] for the subscribers of reliable ``publishers`` to acknowledge
    what was published: a writer destroyed with samples unacknowledged may never deliver them."""
    for publisher in publishers:
        publisher.wait_for_all_acked(Duration(seconds=timeout))
