"""billing_guard's functional core: pure rules of SPEC.md sections 1 (checkpoints) and 2 (disputes)."""
