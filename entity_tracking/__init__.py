"""Reproducible artifact of "Fine-Tuning Enhances Existing Mechanisms: A Case Study on Entity Tracking"."""

__version__ = "0.1.0"
