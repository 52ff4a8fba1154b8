"""Layer 0: the runbook's vocabulary. Parameters, names, errors, policies and planned changes; no AWS call."""
