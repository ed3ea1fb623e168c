"""Prompt engineering under human control: registry, reviewed changes, A/B, red team."""
