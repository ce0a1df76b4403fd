"""Example projects, shipped inside the package for `gitops-agent demo`."""
