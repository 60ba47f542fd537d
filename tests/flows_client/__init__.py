"""Flows and helpers for the client and ``mfc dump``/``mfc tag`` tests."""
