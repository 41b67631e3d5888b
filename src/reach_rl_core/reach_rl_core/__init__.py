"""reach_rl_core: what training and deployment share, and nothing else; numpy only.

The Franka model (joint names, limits, kinematics: :mod:`.franka_model`), the safety filter's
math (:mod:`.safety_filter`, :mod:`.braking`), the self-collision model (:mod:`.self_collision`),
actuator lag (:mod:`.actuator_lag`) and the policy file's contract (:mod:`.policy_file`). The math
also runs on torch tensors once training has registered them
(:func:`.franka_model.register_array_type`); this package imports no torch, no ROS and no
onnxruntime (the import contract in .importlinter checks it).
"""
