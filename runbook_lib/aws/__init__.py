"""Layer 1: reading and changing AWS. Clients, the run context, keys, vaults and jobs."""
