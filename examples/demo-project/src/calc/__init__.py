"""A tiny calculator: the project the gitops-agent demo works on."""
