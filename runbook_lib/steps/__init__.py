"""Layer 3: the steps of the walkthrough, as the notebooks call them."""
