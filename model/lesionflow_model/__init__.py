"""LesionFlow's model serving: an ONNX image classifier behind the SageMaker container and runtime HTTP contracts.

The same code serves the local stack's endpoint and (built into a container) a SageMaker endpoint.
"""
