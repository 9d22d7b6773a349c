"""Contracts shared by every component: wire schemas, the artifact manifest, logging setup."""
