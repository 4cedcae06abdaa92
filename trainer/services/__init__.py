"""Orchestration services: plain functions that views, tasks and tests call.

rounds       open a round and generate its items (worker side too)
runs         start, cancel, execute and report training runs
checkpoints  register, activate and stream checkpoints
playground   one completion from the active checkpoint, computed on a worker
"""
