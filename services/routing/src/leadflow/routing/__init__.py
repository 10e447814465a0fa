"""Leadflow routing service."""
