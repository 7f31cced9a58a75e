"""Thin glue to Stable-Baselines3 and Tianshou 2.x; all algorithm logic lives in :mod:`scalezero_agents.agent`."""
