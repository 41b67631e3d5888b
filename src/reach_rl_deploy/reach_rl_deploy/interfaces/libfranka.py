"""The deploy node's ``libfranka`` interface: :class:`reach_rl_deploy.interfaces.franky_loop.FrankyLoop`
wired to ROS.

The loop thread connects to the arm at ``robot_ip`` and runs the policy ticks; each tick's
measured state (q [rad], dq [rad/s], tau_J [Nm]) goes out on ``joint_states_topic``. A reflex
is logged and reported on ``/diagnostics`` until ``~/recover`` (std_srvs/Trigger) has run the
robot's error recovery; the arm then first returns to the ready pose if it is far from it.
"""
from typing import List

from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from reach_rl_deploy.deploy_parameters import DeployParameters
from reach_rl_deploy.interfaces import LoopContext
from reach_rl_deploy.interfaces.franky_loop import FrankyLoop, RobotSettings
from reach_rl_deploy.ros_plumbing.qos import reliable
from reach_rl_deploy.ros_plumbing.service_answer import answer

STATE_QOS = reliable(1)


class LibfrankaInterface:
    """The libfranka path (a :class:`~reach_rl_deploy.interfaces.DeployInterface`)."""

    def __init__(self, context: LoopContext, p: DeployParameters):
        if not p.robot_ip:
            raise ValueError("interface libfranka needs robot_ip:=<address of the arm's control unit>"
                             " (127.0.0.1 for franka-sim)")
        self.context = context
        self.log = context.ros.get_logger()
        self.name = "libfranka:" + p.robot_ip
        self._state_pub = context.ros.create_publisher(JointState, p.joint_states_topic, STATE_QOS)
        context.ros.create_service(Trigger, "~/recover", self._on_recover)
        settings = RobotSettings(p.collision_torque_thresholds, p.collision_force_thresholds,
                                 p.joint_impedance)
        controller = context.controller
        self.loop = FrankyLoop(p.robot_ip, controller, context.inputs, self._on_robot_state,
                               self._on_reflex, self.log.info, settings,
                               controller.limits.command_hold, realtime=p.realtime,
                               rt_priority=p.rt_priority, after_tick=context.after_tick)

    def run(self) -> bool:
        """Policy ticks on this thread until the node stops; False if the loop failed."""
        try:
            self.loop.run(self.loop.connect())
            return True
        except Exception as exc:  # franky brings the arm to rest once commands stop
            self.log.fatal("libfranka loop failed (%s: %s); the arm comes to rest "
                                         "once its last command's hold ends"
                                         % (type(exc).__name__, exc))
            return False

    def fault(self) -> str:
        """The latched reflex for /diagnostics, '' when none."""
        return "reflex: " + self.loop.reflex.text if self.loop.reflex.text else ""

    def activate(self) -> str:
        """On ``~/enable true``: nothing to activate (the node drives the arm itself)."""
        return ""

    def diagnostic_values(self) -> list:
        return self.loop.stats.window_values()

    def timing_lines(self) -> List[str]:
        return ["  libfranka: " + self.loop.stats.summary()]

    def finish(self) -> None:
        pass

    def destroy(self) -> None:
        pass

    def _on_robot_state(self, state) -> None:
        """Each policy tick's franky RobotState: the tick's figures recorded, the measured joint
        state published."""
        self.context.account(None)
        msg = JointState(name=list(self.context.joint_names), position=list(state.q),
                         velocity=list(state.dq), effort=list(state.tau_J))
        msg.header.stamp = self.context.ros.get_clock().now().to_msg()
        self._state_pub.publish(msg)

    def _on_reflex(self, text: str) -> None:
        self.log.error("robot reflex: %s; the arm stays stopped until "
                                     "~/recover (std_srvs/Trigger)" % text)

    def _on_recover(self, request, response):
        if not self.loop.reflex.text:
            return answer(response, "no reflex to recover from", self.log)
        self.loop.reflex.request_recover()
        return answer(response, "error recovery requested", self.log)
