"""Leadflow intake service."""
