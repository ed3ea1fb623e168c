"""Feedback service: annotations, metrics and adaptive review rates from human verdicts."""
