"""Activating a ros2_control controller that was spawned inactive, as ``~/enable`` does on a
franka_ros2 install.

The launch spawns joint_trajectory_controller with ``--inactive``, so nothing moves the arm
until a user enables motion; ``~/enable true`` then calls the controller manager's
``switch_controller`` service (controller_manager_msgs/srv/SwitchController: activate the
controller, STRICT). controller_manager_msgs comes with ros2_control on a ROS 2 install and is
on no package registry, so it is imported only here, when a controller is to be activated, and
its absence is reported as the reason motion cannot be enabled.
"""
import rclpy
from rclpy.node import Node

SWITCH_SERVICE = "/controller_manager/switch_controller"
STRICT = 2  # SwitchController.Request.STRICT: fail unless every switch succeeds
TIMEOUT_S = 5.0


def activate(owner: Node, controller: str, timeout: float = TIMEOUT_S) -> str:
    """Activate ``controller`` through the controller manager; '' when it is active, else why
    not. Runs on a helper node of its own, so it can be called from ``owner``'s callbacks."""
    try:
        from controller_manager_msgs.srv import SwitchController
    except ImportError:
        return ("cannot activate %s: controller_manager_msgs is not installed (it comes with "
                "ros2_control on a ROS 2 install; source it)" % controller)
    node = rclpy.create_node(owner.get_name() + "_controller_switch",
                             namespace=owner.get_namespace(), context=owner.context,
                             start_parameter_services=False)
    try:
        client = node.create_client(SwitchController, SWITCH_SERVICE)
        if not client.wait_for_service(timeout_sec=timeout):
            return "cannot activate %s: no %s (is franka_ros2 running?)" % (controller,
                                                                            SWITCH_SERVICE)
        request = SwitchController.Request(activate_controllers=[controller], strictness=STRICT)
        request.timeout.sec = int(timeout)
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        response = future.result()
        if response is None:
            return "cannot activate %s: %s did not answer" % (controller, SWITCH_SERVICE)
        if not response.ok:
            return "cannot activate %s: the controller manager refused (%s)" % (
                controller, getattr(response, "message", "") or "no reason given")
        return ""
    finally:
        node.destroy_node()
