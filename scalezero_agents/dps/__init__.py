"""Dynamic Parameter Scaling: LoRA adapters added stage by stage as tasks get solved."""
