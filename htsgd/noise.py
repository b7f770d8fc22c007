"""Iterate noise (placeholder until the heavy-tailed noise types land): type 0 only."""


def make_noise(config, model, generator):
    """The callable that adds one step's noise to the hidden layers in place, or None for no noise."""
    if config.iterate_noise == 0:
        return None
    raise NotImplementedError(f"iterate_noise = {config.iterate_noise} is not implemented yet")
