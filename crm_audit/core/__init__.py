"""The core contracts: model, probe, adapter, hookspecs, target, runner and what they share."""
