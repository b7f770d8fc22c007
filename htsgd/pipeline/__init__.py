"""Experiment groups run as plan, launch, collect: params files, the plan, launchers, notebooks and claims."""
