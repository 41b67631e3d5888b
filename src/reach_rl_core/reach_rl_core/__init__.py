"""reach_rl_core: what training and deployment share, and nothing else; numpy only.

The Franka model (joint names, limits, kinematics: :mod:`.franka_model`), the safety filter's
math (:mod:`.safety_filter`, :mod:`.braking`), the self-collision model (:mod:`.self_collision`),
actuator lag (:mod:`.actuator_lag`), the policy file's contract (:mod:`.policy_file`), and the
deploy interfaces' names with the defaults more than one package uses (:mod:`.filter_limits`:
``INTERFACES``, ``DEFAULT_INTERFACE``, ``DEFAULT_VELOCITY_FRACTION``, ``DEFAULT_CONTROL_RATE``,
``DEFAULT_STATE_TIMEOUT``; everything else imports them). The math also runs on torch tensors
once training has registered them (:func:`.franka_model.register_array_type`); this package
imports no torch, no ROS and no onnxruntime (the import contract in .importlinter checks it).
"""
