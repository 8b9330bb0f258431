"""Load generation: async clients that produce raw per-request records and compute no aggregates."""
