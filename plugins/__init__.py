"""Built-in crm-audit plugins, each written exactly as a third-party plugin would be."""
