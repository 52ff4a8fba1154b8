"""Layer 4: what a person sees in JupyterLab: tables, plans with Apply buttons, progress."""
