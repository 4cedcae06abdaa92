"""Thin DRF views of the feedback API: check access, validate the shape, call one service."""
