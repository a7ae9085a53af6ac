"""The ``lesionflow`` command for people: upload, query the prediction log, follow it, backfill, redrive, report.

It works the same against a deployed stack (found by its CloudFormation outputs) and the local stack.
"""
