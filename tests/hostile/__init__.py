"""Hostile servers and careless callers against the promises of the README's Guarantees."""
