"""Layer 2: known failures. Their registry, the checks that predict them, diagnosis and fixes."""
