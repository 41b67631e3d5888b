"""Test-only parts of reach_rl_deploy: nothing in the production modules imports them."""
