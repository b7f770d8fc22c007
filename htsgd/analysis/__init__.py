"""A group's analysis: every run pruned and evaluated, tail indices, and the verdict at equal accuracy."""
