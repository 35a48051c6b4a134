"""Training code (dev-only, excluded from the extension zip): corpus generation and model training."""
