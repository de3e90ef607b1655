"""Each explorer analysis beside its reference (transformer-lens, ARENA, captum) on the same model."""
