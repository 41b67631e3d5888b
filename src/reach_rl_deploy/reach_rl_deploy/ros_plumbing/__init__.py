"""ROS plumbing that reach_rl_deploy, reach_rl_train and reach_rl_sim share: QoS profiles, parameter
declaration, service answers, reading a topic on the loop's thread, spinning an executor on a
thread of its own, real-time scheduling, timing histograms."""
