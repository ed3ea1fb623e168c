"""Example apps that put HITL-Ops in front of an LLM app."""
