"""Leadflow console: users, roles, sign-in and the token issuer every service trusts."""
