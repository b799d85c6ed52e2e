"""Provider adapters: translate unified requests to each provider's wire format and back."""
