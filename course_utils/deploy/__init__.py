"""Deployment: the exported pipeline (.pt2, ONNX), the predict command line, lesson 08's model for lesson 13."""
