"""Shared fixtures. The emulator fixture ``gupshup_server`` comes from agupshup's pytest plugin."""
