"""ROS plumbing that reach_rl_deploy, reach_rl_train and reach_rl_sim share: QoS profiles, parameter
declaration, service answers, reading a topic on the loop's thread, real-time scheduling, timing
histograms."""
