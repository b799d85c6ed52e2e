"""The auth service: users, bcrypt password hashes, EdDSA token issuing and the public JWKS."""
