"""The explore notebook's logic: prune a finished run of the record, or train a configuration live.

Two views, each a class that builds its ipywidgets and whose callbacks are plain methods, so a
test calls them without a browser (setting a widget's value runs its callback, as a click would):

* `RecordExplorer` (record_explorer.py): a group (a folder of `results/` with runs.csv) and one of
  its runs, picked in dropdowns. The run's network comes from its model.pt; the committed records
  keep no weights, so a digits run without one is retrained in memory from its config.json
  (seconds), its accuracy shown beside the recorded one; for any other dataset it says how to get
  the weights (networks.py). How the group was analysed is read from its params file (records.py).
* `LiveTrainer` (live_trainer.py): noise type, alpha, sigma, width, learning rate and seed, on
  digits by default, trained in a background thread with a live curve and a Stop button.

Both end in a `PruneView` (prune_view.py): a slider sets the amount removed under the criterion
chosen, by the analysis' own calls (pruning.py), so a fraction gives exactly the accuracy of the
group's sweep and the paper's point (`mce` at 0.1) exactly its row. Nothing here writes a file:
retrained networks stay in memory. The widgets are standard ipywidgets 8 ones and figures are
PNGs in Image widgets, drawn with Agg off pyplot (figures.py, with the train notebook's plotting),
so a background thread may draw them: the same in JupyterLab and classic Notebook.
"""

from .live_trainer import LiveTrainer
from .record_explorer import RecordExplorer

__all__ = ["LiveTrainer", "RecordExplorer"]
