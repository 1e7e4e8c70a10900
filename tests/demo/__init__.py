"""The demo console."""
