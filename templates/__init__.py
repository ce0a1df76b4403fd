"""Templates shipped inside the package (plan, constraints, prompt, memory log, PR body)."""
