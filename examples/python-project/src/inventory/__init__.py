"""A tiny inventory library: the example project gitops-agent's sample plan works on."""
