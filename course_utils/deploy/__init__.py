"""Deployment: the exported inference pipeline (.pt2, ONNX) and the predict command line."""
