"""Real-time analytics backend: Redis channel -> listener -> cache/aggregates + batcher -> REST/Socket.IO."""
