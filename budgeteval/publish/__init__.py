"""Publishing: scored runs to where researchers share them.

Takes scored run directories (`budgeteval.report.runs.Run`) and the figures and tables of the
earlier stages; gives a Hugging Face dataset folder with its card, uploaded as one commit
(`hub`, `card`), and experiment-tracker runs on Weights & Biases or Trackio (`trackers`).
Optional packages (huggingface_hub's upload, wandb, trackio) are imported only when used.
"""
