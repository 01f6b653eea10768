"""Plots: the shared figure style, budget curves, analysis figures and training-step figures.

Takes `Run`s (and analysis frames); gives matplotlib figures and the files saved from them.
"""
