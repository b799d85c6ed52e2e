"""The edge service: authenticates, validates and enqueues; relays replies to clients."""
