"""Helpers shared by test modules: real parts started on loopback, and ways to drive them."""
