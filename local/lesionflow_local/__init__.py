"""LesionFlow's local tooling: the application read from ``template.yaml`` and run on one machine, no AWS account."""
