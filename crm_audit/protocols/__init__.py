"""Built-in protocol plugins: the REST and JSON-RPC adapters and the auth methods."""
