"""Review API: authenticated claim / decide endpoints and the reviewer web UI."""
