"""The app: the command line, the runner of notebooks, their kernels and fork server, and the run's report."""
