"""reach_rl training side: built-in simulator, reach task, PPO, and the ONNX policy export.

The training core (this package minus the CLI extras) stays Python 3.8 compatible so it
can run inside an Isaac Gym environment.
"""
__version__ = "0.1.0"
