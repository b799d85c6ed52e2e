"""Per-provider worker pools: consume a provider's job stream, call the provider, reply."""
