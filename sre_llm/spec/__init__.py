"""The model-release spec: models, registries, rules and the loader."""
