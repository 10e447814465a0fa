"""Leadflow sla-monitor service."""
