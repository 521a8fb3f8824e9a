"""The main job: dense training, masks, the ticket grid, evaluation and the report."""
