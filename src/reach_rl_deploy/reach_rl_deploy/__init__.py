"""reach_rl deploy side: runs a contract-2 ONNX reach policy on a Franka arm.

Needs numpy and onnxruntime (and rclpy for the nodes), never torch.
"""
