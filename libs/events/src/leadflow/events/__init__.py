"""Leadflow shared kernel: envelope, catalogue, lifecycle, event store, outbox, consumers, timers, service kit."""
