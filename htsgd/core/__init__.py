"""The science: data, models, heavy-tailed noise, the training loop, evaluation and pruning. Tensors in and out."""
