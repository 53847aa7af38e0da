"""Shared pieces of the peer benchmark: stdlib only, so every venv can import them."""
