"""Leadflow analytics service."""
