"""tests.policy evaluates conditions as the IAM User Guide documents them ("Condition operators", "Policy evaluation
logic"): each row is a documented rule, with a key present and absent from the request context."""

import pytest

from tests.policy import Decision, Request, condition_holds, evaluate

PRESENT, ABSENT = {"s3:x-amz-server-side-encryption": "AES256"}, {}
ALGORITHM = "s3:x-amz-server-side-encryption"

RULES = {
    # "If the key that you specify in a policy condition is not present in the request context, the values do not
    # match and the condition is false"
    "StringEquals, key absent: false": ({"StringEquals": {ALGORITHM: "AES256"}}, ABSENT, False),
    "StringEquals, key present and equal: true": ({"StringEquals": {ALGORITHM: "AES256"}}, PRESENT, True),
    "StringEquals is case-sensitive on values": ({"StringEquals": {ALGORITHM: "aes256"}}, PRESENT, False),
    "condition key names are case-insensitive":
        ({"StringEquals": {"S3:X-Amz-Server-Side-Encryption": "AES256"}}, PRESENT, True),
    # "If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
    # right key is not present, the condition is true"
    "StringNotEquals, key absent: true": ({"StringNotEquals": {ALGORITHM: "aws:kms"}}, ABSENT, True),
    "StringNotEquals, key present and different: true": ({"StringNotEquals": {ALGORITHM: "aws:kms"}}, PRESENT, True),
    "StringNotEquals with several values: true only when none matches":
        ({"StringNotEquals": {ALGORITHM: ["aws:kms", "AES256"]}}, PRESENT, False),
    "ArnNotLike, key absent: true": ({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::b"}}, ABSENT, True),
    # "...IfExists ... If the key is not present, evaluate the condition element as true"
    "StringEqualsIfExists, key absent: true": ({"StringEqualsIfExists": {ALGORITHM: "aws:kms"}}, ABSENT, True),
    "StringEqualsIfExists, key present and different: false":
        ({"StringEqualsIfExists": {ALGORITHM: "aws:kms"}}, PRESENT, False),
    "StringNotEqualsIfExists, key absent: true": ({"StringNotEqualsIfExists": {ALGORITHM: "AES256"}}, ABSENT, True),
    "BoolIfExists, key absent: true": ({"BoolIfExists": {"aws:SecureTransport": "false"}}, ABSENT, True),
    "Bool, key absent: false": ({"Bool": {"aws:SecureTransport": "false"}}, ABSENT, False),
    # "Null ... true (the key doesn't exist — it is null) ... false (the key exists and its value is not null)"
    "Null true, key absent: true": ({"Null": {ALGORITHM: "true"}}, ABSENT, True),
    "Null true, key present: false": ({"Null": {ALGORITHM: "true"}}, PRESENT, False),
    "Null false, key present: true": ({"Null": {ALGORITHM: "false"}}, PRESENT, True),
    # "If your policy has multiple condition operators ... they are evaluated using a logical AND"
    "two operators: both must hold": ({"Null": {ALGORITHM: "false"}, "StringEquals": {ALGORITHM: "x"}}, PRESENT, False),
    # "Each of the six colon-delimited components of the ARN is checked separately" (ArnLike and ArnEquals alike)
    "ArnLike compares part by part: a pattern of four parts matches no ARN":
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:*"}}, {"aws:SourceArn": "arn:aws:s3:::bucket"}, False),
    "ArnLike's wildcard matches within its part":
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::lesionflow-*"}}, {"aws:SourceArn": "arn:aws:s3:::lesionflow-1"},
         True),
    "ArnEquals accepts wildcards too":
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudwatch:*:1:alarm:*"}},
         {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:1:alarm:a"}, True),
}


@pytest.mark.parametrize(("condition", "context", "holds"), RULES.values(), ids=RULES.keys())
def test_condition_operators_follow_the_documented_rules(condition, context, holds):
    assert condition_holds(condition, Request("s3:PutObject", "arn:aws:s3:::b/k", {"AWS": "x"}, context)) is holds


def test_an_explicit_deny_wins_over_an_allow_and_nothing_applicable_is_an_implicit_deny():
    # Given a policy that allows a role everything and denies plain HTTP
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    role = {"AWS": "arn:aws:sts::111122223333:assumed-role/r/s"}
    # Then TLS is allowed, plain HTTP denied, and another account's role gets nothing from this policy
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/k", role, {"aws:SecureTransport": "true"})) \
        == Decision.ALLOW
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/k", role, {"aws:SecureTransport": "false"})) \
        == Decision.DENY
    other = {"AWS": "arn:aws:sts::444455556666:assumed-role/r/s"}
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/k", other, {"aws:SecureTransport": "true"})) \
        == Decision.IMPLICIT_DENY


def test_an_operator_the_evaluator_does_not_know_fails_loudly_instead_of_passing():
    with pytest.raises(NotImplementedError):
        condition_holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, Request("s3:GetObject", "*", {"AWS": "x"}))


def test_wildcards_are_iams_star_and_question_mark_and_brackets_are_literal():
    arn = {"aws:SourceArn": "arn:aws:s3:::b[1]"}
    assert condition_holds({"StringLike": {"aws:SourceArn": "arn:aws:s3:::b[1]"}}, Request("a", "r", {"AWS": "x"}, arn))
    assert not condition_holds({"StringLike": {"aws:SourceArn": "arn:aws:s3:::b1"}},
                               Request("a", "r", {"AWS": "x"}, {"aws:SourceArn": "arn:aws:s3:::b[1]"}))
    assert condition_holds({"StringLike": {"aws:SourceArn": "arn:aws:s3:::b?1?"}}, Request("a", "r", {"AWS": "x"}, arn))
