"""Router service: risk tiers, sampling, delivery modes, review queues and release."""
