"""Code shared by the gateway's services: settings, schemas, errors, Redis names, logging."""
