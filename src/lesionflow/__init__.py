"""LesionFlow domain code shared by every Lambda function and the local tooling.

Nothing in this package reads ``os.environ`` or sees an AWS event shape: handlers parse events and settings and pass
plain values in.
"""
