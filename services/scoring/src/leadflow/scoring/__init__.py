"""Leadflow scoring service."""
