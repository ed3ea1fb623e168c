"""Prescreen service: offline detectors that flag LLM outputs before routing."""
