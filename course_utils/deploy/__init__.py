"""Deployment: the exported inference pipeline and the predict command line."""
