"""Fault tests: real processes killed with SIGKILL, and what the survivors make of it."""
