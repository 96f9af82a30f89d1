"""The shared dashboard server: background jobs, the memory governor, the login throttle, start-up."""
