"""The keyvault service: users' own provider keys, sealed with AES-256-GCM at rest."""
